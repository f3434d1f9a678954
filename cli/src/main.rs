//! `chat-cli`: register, log in, list and create rooms, add members, send, and tail a room,
//! end-to-end encrypted, from a terminal. See `chat-cli --help` and the README.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use cli::{register, CliError, Connection, Session};

/// A command-line client of the end-to-end encrypted chat. The password is read from the
/// environment variable CHAT_PASSWORD, or else from the first line of standard input.
#[derive(Debug, Parser)]
#[command(name = "chat-cli", version)]
struct Arguments {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "CHAT_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The account name.
    #[arg(long, short, env = "CHAT_USER")]
    user: String,
    /// For HTTPS: the PEM certificate of the authority that signed the server's certificate.
    #[arg(long, env = "CHAT_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Where the sealed client state is kept, one file per account.
    #[arg(long, env = "CHAT_STATE_DIR", default_value_os_t = default_state_dir())]
    state_dir: PathBuf,
    /// A TOTP or recovery code, for an account with two-factor login.
    #[arg(long, env = "CHAT_TOTP_CODE")]
    totp_code: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates the account.
    Register,
    /// Lists your rooms: id, name, key epoch and members.
    Rooms,
    /// Creates a room and prints its id.
    Create {
        /// The room's name (encrypted; the server never sees it).
        name: String,
    },
    /// Adds a member to a room (owners and admins).
    Add {
        /// The room, by id or name.
        room: String,
        /// Who to add.
        username: String,
    },
    /// Removes (or with --ban bans) a member, in an entry that starts the next key epoch
    /// (owners and admins).
    Remove {
        /// The room, by id or name.
        room: String,
        /// Who to remove.
        username: String,
        /// Also bar them from coming back.
        #[arg(long)]
        ban: bool,
    },
    /// Rotates the room key (owners and admins; any member after someone left).
    Rotate {
        /// The room, by id or name.
        room: String,
    },
    /// Leaves the room (everyone but the owner).
    Leave {
        /// The room, by id or name.
        room: String,
    },
    /// Sends a message.
    Send {
        /// The room, by id or name.
        room: String,
        /// The text.
        text: String,
    },
    /// Prints a room's history, and with --follow the messages that arrive.
    Tail {
        /// The room, by id or name.
        room: String,
        /// Keep printing new messages for this many seconds (0: until interrupted).
        #[arg(long)]
        follow: Option<u64>,
    },
}

/// `$XDG_DATA_HOME/chat-cli`, else `$HOME/.local/share/chat-cli`, else `./chat-cli-state`.
fn default_state_dir() -> PathBuf {
    if let Some(data) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(data).join("chat-cli");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/chat-cli"),
        None => PathBuf::from("chat-cli-state"),
    }
}

fn password() -> Result<String, CliError> {
    if let Ok(password) = std::env::var("CHAT_PASSWORD") {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| CliError::Usage(format!("cannot read the password: {error}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(CliError::Usage(
            "no password: set CHAT_PASSWORD or type it on standard input".into(),
        ));
    }
    Ok(password)
}

async fn run(arguments: Arguments) -> Result<(), CliError> {
    let connection = Connection::new(&arguments.server, arguments.ca_cert.as_deref())?;
    let password = password()?;
    if let Command::Register = arguments.command {
        register(&connection, &arguments.user, &password).await?;
        println!("registered {}", arguments.user);
        return Ok(());
    }
    let mut session = Session::login(
        &connection,
        &arguments.user,
        &password,
        arguments.totp_code.as_deref(),
        &arguments.state_dir,
    )
    .await?;
    let mut out = std::io::stdout();
    session.report_login_warnings(&mut out)?;
    let done = match arguments.command {
        Command::Register => Ok(()),
        Command::Rooms => session.list_rooms(&connection, &mut out).await,
        Command::Create { name } => {
            let room_id = session.create_room(&connection, &name, &mut out).await?;
            println!("{}", room_id.to_hex());
            Ok(())
        }
        Command::Add { room, username } => {
            let room = session.find_room(&connection, &room, &mut out).await?;
            session
                .add_member(&connection, room, &username, &mut out)
                .await?;
            println!("added {username}");
            Ok(())
        }
        Command::Remove {
            room,
            username,
            ban,
        } => {
            let room = session.find_room(&connection, &room, &mut out).await?;
            session
                .remove(&connection, room, &username, ban, &mut out)
                .await?;
            println!("removed {username}");
            Ok(())
        }
        Command::Rotate { room } => {
            let room = session.find_room(&connection, &room, &mut out).await?;
            session.rotate(&connection, room, &mut out).await?;
            println!("rotated");
            Ok(())
        }
        Command::Leave { room } => {
            let room = session.find_room(&connection, &room, &mut out).await?;
            session.leave(&connection, room, &mut out).await?;
            println!("left");
            Ok(())
        }
        Command::Send { room, text } => {
            let room = session.find_room(&connection, &room, &mut out).await?;
            let id = session.send(&connection, room, &text, &mut out).await?;
            println!("sent message {id}");
            Ok(())
        }
        Command::Tail { room, follow } => {
            let room = session.find_room(&connection, &room, &mut out).await?;
            let follow = follow.map(|seconds| match seconds {
                0 => Duration::MAX,
                seconds => Duration::from_secs(seconds),
            });
            session.tail(&connection, room, follow, &mut out).await
        }
    };
    done?;
    // What this run saw goes to the server's copy, for the account's other clients.
    session.upload_state(&connection, &mut out).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let arguments = Arguments::parse();
    match run(arguments).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-cli: {error}");
            ExitCode::FAILURE
        }
    }
}
