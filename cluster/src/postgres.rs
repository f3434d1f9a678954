//! Throwaway PostgreSQL servers from Debian's packages: a fresh cluster in a temporary
//! directory on a free loopback port, never a system service, stopped and deleted when the
//! [`Postgres`] value is dropped. `cargo xtask test` runs the server's integration tests on
//! one; a [`crate::Deployment`] runs a primary and a streaming standby.

use std::env;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::system::{apt_install, is_root, run_command, StepResult};

/// The account PostgreSQL runs as when the task runs as root (PostgreSQL refuses root).
const SYSTEM_USER: &str = "postgres";

/// The programs of the newest PostgreSQL under `/usr/lib/postgresql/*/bin`, installing
/// Debian's `postgresql` package when there is none.
pub fn bin_directory() -> Result<PathBuf, String> {
    if let Some(found) = newest_bin_directory() {
        return Ok(found);
    }
    apt_install(
        &["postgresql"],
        "PostgreSQL is needed to test the server on it",
    )?;
    newest_bin_directory().ok_or_else(|| "PostgreSQL is still missing after apt-get".into())
}

fn newest_bin_directory() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A port on 127.0.0.1 that nothing listens on (now).
pub fn free_port() -> Result<u16, String> {
    // Below Linux's default range of ephemeral ports (32768-60999), which outgoing
    // connections take their local ports from: a port chosen from that range could be taken
    // by one of them (PostgreSQL's replication, a client) before its server binds it.
    for _ in 0..1_000 {
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = LOW_PORTS.start + (random % u64::from(LOW_PORTS.end - LOW_PORTS.start)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(format!(
        "cannot find a free port between {} and {}",
        LOW_PORTS.start, LOW_PORTS.end
    ))
}

/// Where [`free_port`] looks.
const LOW_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A new empty directory under the system's temporary directory, owned by the account that
/// runs PostgreSQL.
pub fn temporary_directory(name: &str) -> Result<PathBuf, String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    let directory = env::temp_dir().join(format!("{name}-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&directory)
        .map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
    if is_root() {
        run_command(Command::new("chown").arg(SYSTEM_USER).arg(&directory))?;
    }
    Ok(directory)
}

/// A command running `program` of `bin` as the account PostgreSQL runs as.
pub fn as_postgres(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command
            .args(["-u", SYSTEM_USER, "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

/// One running PostgreSQL server.
pub struct Postgres {
    bin: PathBuf,
    /// The cluster's data directory.
    pub data: PathBuf,
    /// The directory holding the data directory, the log and the socket; deleted on drop
    /// when the server owns it.
    pub directory: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
    owns_directory: bool,
}

impl Postgres {
    /// Creates a cluster (superuser `postgres`, trust authentication on loopback) in a new
    /// temporary directory and starts it with `settings` (`name=value`, as `postgres -c`).
    ///
    /// # Errors
    /// A step that failed, with its command.
    pub fn start_new(name: &str, settings: &[&str]) -> Result<Self, String> {
        let bin = bin_directory()?;
        let directory = temporary_directory(name)?;
        let data = directory.join("data");
        run_command(
            as_postgres(&bin, "initdb")
                .args([
                    "--username",
                    "postgres",
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                ])
                .arg("--pgdata")
                .arg(&data)
                .stdout(Stdio::null()),
        )?;
        let server = Self {
            bin,
            data,
            directory,
            port: free_port()?,
            owns_directory: true,
        };
        server.start(settings)?;
        Ok(server)
    }

    /// A server over an existing data directory in `directory` (a standby's, made by
    /// `pg_basebackup`), started with `settings`; `directory` is deleted on drop.
    ///
    /// # Errors
    /// A step that failed, with its command.
    pub fn start_existing(
        bin: &Path,
        directory: &Path,
        data: &Path,
        settings: &[&str],
    ) -> Result<Self, String> {
        let server = Self {
            bin: bin.to_path_buf(),
            data: data.to_path_buf(),
            directory: directory.to_path_buf(),
            port: free_port()?,
            owns_directory: true,
        };
        server.start(settings)?;
        Ok(server)
    }

    /// The programs of this server's PostgreSQL version.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Runs one SQL command as the superuser on `database`.
    ///
    /// # Errors
    /// psql's failure.
    pub fn psql(&self, database: &str, sql: &str) -> StepResult {
        run_command(
            Command::new(self.bin.join("psql"))
                .args(["--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1"])
                .arg(self.url(database))
                .args(["--command", sql])
                .stdout(Stdio::null()),
        )
    }

    /// Runs one SQL query as the superuser on `database` and returns its rows, unaligned,
    /// one per line.
    ///
    /// # Errors
    /// psql's failure.
    pub fn query(&self, database: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["--quiet", "--no-psqlrc", "--tuples-only", "--no-align"])
            .args(["-v", "ON_ERROR_STOP=1"])
            .arg(self.url(database))
            .args(["--command", sql])
            .output()
            .map_err(|error| format!("cannot run psql: {error}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(format!(
                "psql {sql:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    fn start(&self, settings: &[&str]) -> StepResult {
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={}",
            self.port,
            self.directory.display()
        );
        for setting in settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        run_command(
            as_postgres(&self.bin, "pg_ctl")
                .args(["--wait", "--pgdata"])
                .arg(&self.data)
                .arg("--log")
                .arg(self.directory.join(format!("postgres-{}.log", self.port)))
                .args(["--options", &options, "start"])
                .stdout(Stdio::null()),
        )
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Kills the server's postmaster with SIGKILL, as a crash of the machine would: no
    /// shutdown checkpoint, its backends left to die.
    ///
    /// # Errors
    /// The pid file cannot be read, or kill(1) fails.
    pub fn kill(&self) -> StepResult {
        let pid_file = self.data.join("postmaster.pid");
        let pids = fs::read_to_string(&pid_file)
            .map_err(|error| format!("cannot read {}: {error}", pid_file.display()))?;
        let pid = pids.lines().next().unwrap_or_default().trim().to_owned();
        run_command(Command::new("kill").args(["-KILL", &pid]))
    }

    /// Promotes a standby to primary (`pg_ctl promote`), waiting until it accepts writes.
    ///
    /// # Errors
    /// pg_ctl's failure.
    pub fn promote(&self) -> StepResult {
        run_command(
            as_postgres(&self.bin, "pg_ctl")
                .args(["--wait", "--pgdata"])
                .arg(&self.data)
                .arg("promote")
                .stdout(Stdio::null()),
        )
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`, as a crash would), if it runs.
    pub fn stop_immediately(&self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .args(["--pgdata"])
            .arg(&self.data)
            .args(["--mode", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop_immediately();
        if self.owns_directory {
            let _ = fs::remove_dir_all(&self.directory);
        }
    }
}
