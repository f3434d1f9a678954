//! `cargo xtask cluster`: a whole deployment on this machine, for a person to try, from the
//! files of `deploy/` as they are. A PostgreSQL primary with a synchronous streaming
//! standby, three server instances on ports 8081 to 8083, and nginx on 8080 in front
//! (`deploy/nginx/nginx.conf`, which includes `deploy/nginx/chat.conf`). Everything lives in
//! temporary directories and stops on Ctrl-C.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::postgres::{as_postgres, temporary_directory, Postgres};
use crate::tools::{apt_install, is_root, Tools};
use crate::{build_web_client, cargo, project_root, run_command, step, TaskResult};

/// The address nginx listens on (`deploy/nginx/chat.conf`).
pub const PUBLIC_URL: &str = "http://127.0.0.1:8080";
/// The instances' ports, as `deploy/nginx/chat.conf` names them.
pub const INSTANCE_PORTS: [u16; 3] = [8081, 8082, 8083];
/// The standby's name, which the primary waits for on every commit.
const STANDBY_NAME: &str = "standby";
/// How long a process may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the deployment until Ctrl-C.
pub fn cluster() -> TaskResult {
    let tools = Tools::ensure_for_build()?;
    build_web_client(&tools)?;
    step("building the server (cargo build --release --package server)");
    run_command(cargo().args(["build", "--release", "--package", "server"]))?;
    let nginx = nginx_binary()?;

    step("PostgreSQL: a primary, and a standby it replicates to synchronously");
    let (primary, standby) = start_database()?;
    println!(
        "primary on port {}, standby on port {}",
        primary.port, standby.port
    );

    step("three server instances (ports 8081, 8082, 8083)");
    let workspace = temporary_directory("chat-cluster")?;
    let mut processes = Processes::default();
    let database_url = primary.url("chat");
    for port in INSTANCE_PORTS {
        let child = start_instance(&workspace, &database_url, port)?;
        processes.instances.push((port, child));
        // The first instance creates the server key the others load.
        wait_until_healthy(port)?;
    }

    step("nginx in front (deploy/nginx/nginx.conf)");
    processes.nginx = Some(start_nginx(&nginx, &workspace)?);
    wait_until_healthy(8080)?;

    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|error| format!("cannot catch Ctrl-C: {error}"))?;
    println!(
        "\nThe chat runs at {PUBLIC_URL} (three instances behind nginx, on PostgreSQL with a \
         synchronous standby).\nFiles: {}\nPress Ctrl-C to stop it.",
        workspace.display()
    );
    // Ends on Ctrl-C, or when nginx ends. An instance that ends (killed, say, to see its
    // clients move to the others) is started again, as systemd's Restart=on-failure would.
    loop {
        if stopped.recv_timeout(Duration::from_secs(1)).is_ok() {
            break;
        }
        for port in processes.ended_instances() {
            println!("instance {port} ended; starting it again");
            processes
                .instances
                .push((port, start_instance(&workspace, &database_url, port)?));
        }
        if processes.nginx_ended() {
            println!("nginx ended; stopping the rest");
            break;
        }
    }
    step("stopping: instances drain, then nginx and PostgreSQL stop");
    processes.stop();
    drop(standby);
    drop(primary);
    let _ = fs::remove_dir_all(&workspace);
    Ok(())
}

/// The server instances and nginx, stopped (instances with SIGTERM, so they drain) when
/// dropped.
#[derive(Default)]
struct Processes {
    /// Each instance's port and process.
    instances: Vec<(u16, Child)>,
    nginx: Option<Child>,
}

impl Processes {
    /// Removes the instances that have exited and returns their ports.
    fn ended_instances(&mut self) -> Vec<u16> {
        let mut ended = Vec::new();
        self.instances.retain_mut(|(port, child)| {
            let running = matches!(child.try_wait(), Ok(None));
            if !running {
                ended.push(*port);
            }
            running
        });
        ended
    }

    /// Whether nginx has exited.
    fn nginx_ended(&mut self) -> bool {
        matches!(self.nginx.as_mut().map(Child::try_wait), Some(Ok(Some(_))))
    }

    fn stop(&mut self) {
        for (_, child) in &mut self.instances {
            signal(child, "TERM");
        }
        for (_, child) in &mut self.instances {
            let _ = child.wait();
        }
        self.instances.clear();
        if let Some(mut nginx) = self.nginx.take() {
            signal(&nginx, "QUIT");
            let _ = nginx.wait();
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `SIGname` to `child` with kill(1).
fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
}

/// Debian's nginx, installed when missing.
fn nginx_binary() -> Result<PathBuf, String> {
    let installed = Path::new("/usr/sbin/nginx");
    if !installed.is_file() {
        apt_install(&["nginx"], "nginx is the load balancer of the cluster")?;
    }
    if installed.is_file() {
        Ok(installed.to_path_buf())
    } else {
        Err("nginx is still missing after apt-get".into())
    }
}

/// A primary with database `chat` and a standby streaming from it, the primary waiting for
/// the standby on every commit (`synchronous_standby_names`).
fn start_database() -> Result<(Postgres, Postgres), String> {
    let primary = Postgres::start_new(
        "chat-cluster-primary",
        &["wal_level=replica", "max_wal_senders=5"],
    )?;
    primary.psql("postgres", "CREATE DATABASE chat")?;
    let directory = temporary_directory("chat-cluster-standby")?;
    let data = directory.join("data");
    let source = format!(
        "host=127.0.0.1 port={} user=postgres application_name={STANDBY_NAME}",
        primary.port
    );
    run_command(
        as_postgres(primary.bin(), "pg_basebackup")
            .arg("--pgdata")
            .arg(&data)
            .args([
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
            ])
            .args(["--dbname", &source]),
    )?;
    let standby = Postgres::start_existing(primary.bin(), &directory, &data, &["hot_standby=on"])?;
    primary.psql(
        "postgres",
        &format!("ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'"),
    )?;
    primary.psql("postgres", "SELECT pg_reload_conf()")?;
    let started = Instant::now();
    loop {
        let state = primary.query(
            "postgres",
            &format!(
                "SELECT sync_state FROM pg_stat_replication \
                 WHERE application_name = '{STANDBY_NAME}'"
            ),
        )?;
        if state == "sync" {
            return Ok((primary, standby));
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!("the standby is not synchronous (state {state:?})"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts `target/release/server` on `port`, configured as `deploy/chat.env.example`
/// describes, with its files in `workspace`.
fn start_instance(workspace: &Path, database_url: &str, port: u16) -> Result<Child, String> {
    let root = project_root();
    let attachments = workspace.join("attachments");
    fs::create_dir_all(&attachments)
        .map_err(|error| format!("cannot create {}: {error}", attachments.display()))?;
    let log = fs::File::create(workspace.join(format!("instance-{port}.log")))
        .map_err(|error| format!("cannot create the instance log: {error}"))?;
    Command::new(root.join("target/release/server"))
        .current_dir(&root)
        .env("CHAT_BIND", format!("127.0.0.1:{port}"))
        .env("CHAT_DATABASE_URL", database_url)
        .env("CHAT_STATIC_DIR", root.join("web-client/dist"))
        .env("CHAT_SERVER_KEY_FILE", workspace.join("server.key"))
        .env(
            "CHAT_ATTACHMENTS_URL",
            format!("file://{}", attachments.display()),
        )
        .env("CHAT_CLIENT_IP_HEADER", "X-Forwarded-For")
        .env("CHAT_TRUSTED_PROXIES", "127.0.0.1/32")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|error| format!("cannot start the server on port {port}: {error}"))
}

/// Starts nginx (not as a daemon) with `deploy/nginx/nginx.conf`, in a prefix folder of
/// `workspace`.
fn start_nginx(nginx: &Path, workspace: &Path) -> Result<Child, String> {
    let prefix = workspace.join("nginx");
    for folder in ["client", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let path = prefix.join("temp").join(folder);
        fs::create_dir_all(&path)
            .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    }
    if is_root() {
        // Workers of a master started as root run as `nobody`.
        run_command(
            Command::new("chown")
                .args(["-R", "nobody"])
                .arg(prefix.join("temp")),
        )?;
    }
    let configuration = project_root().join("deploy/nginx/nginx.conf");
    let mut prefix_argument = prefix.into_os_string();
    prefix_argument.push("/");
    Command::new(nginx)
        .arg("-p")
        .arg(prefix_argument)
        .arg("-c")
        .arg(configuration)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot start nginx: {error}"))
}

/// Waits until `GET /healthz` on `port` answers 200.
pub fn wait_until_healthy(port: u16) -> TaskResult {
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        if healthy(port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "nothing healthy on port {port} after {} s",
        START_TIMEOUT.as_secs()
    ))
}

fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /healthz HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}
