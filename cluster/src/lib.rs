//! A deployment of the chat on one machine, from the files of `deploy/`: a PostgreSQL primary
//! with a streaming standby that every commit waits for, server instances, and nginx in
//! front. `cargo xtask cluster` runs one for a person to try (on ports 8080 to 8083, as
//! `deploy/nginx/chat.conf` says); the fault tests (`tests/faults.rs`) run one on free ports
//! and kill parts of it.
//!
//! Everything lives in temporary directories, runs as child processes (PostgreSQL as the
//! `postgres` account when this process is root) and stops when the [`Deployment`] is
//! dropped. Only programs from Debian's packages are used (installed when missing).

pub mod postgres;
pub mod system;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use postgres::{as_postgres, free_port, temporary_directory, Postgres};
use system::{apt_install, is_root, run_command, StepResult};

/// The ports of `deploy/nginx/chat.conf`: nginx, then the instances.
pub const DEPLOY_PORTS: [u16; 4] = [8080, 8081, 8082, 8083];
/// The standby's name, which the primary waits for on every commit.
const STANDBY_NAME: &str = "standby";
/// How long a process may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What a deployment is made of.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The project's root (for `deploy/nginx/` and `web-client/dist/`).
    pub root: PathBuf,
    /// The server binary to run.
    pub server: PathBuf,
    /// nginx's port, then one port per instance; `None` for [`DEPLOY_PORTS`] exactly as
    /// `deploy/nginx/chat.conf` has them.
    pub ports: Option<Vec<u16>>,
    /// The `mfa-service` binary: when given, second factors are kept by that service in a
    /// process of its own (on [`MFA_PORT`], or a free port when `ports` is given), reached
    /// by every instance over mutual TLS with development certificates; otherwise each
    /// instance keeps them in-process, in the schema `mfa` of the database.
    pub mfa_service: Option<PathBuf>,
}

/// The second-factor service's port in a deployment on [`DEPLOY_PORTS`] (its default).
pub const MFA_PORT: u16 = 8443;

/// The second-factor service of a deployment: its port, certificates and process.
struct MfaService {
    port: u16,
    certificates: dev_certificates::DevCertificates,
    child: Child,
}

/// One running server instance.
struct Instance {
    port: u16,
    child: Option<Child>,
}

/// A running deployment; dropping it stops everything and deletes its files.
pub struct Deployment {
    layout: Layout,
    nginx_port: u16,
    instances: Vec<Instance>,
    nginx: Option<Child>,
    /// The database the instances use now (the standby's after [`Deployment::fail_over`]).
    database: Postgres,
    /// The standby, until a fail-over promotes it.
    standby: Option<Postgres>,
    /// The former primary after a fail-over, kept until the end so that its files go too.
    former: Option<Postgres>,
    /// Server key, attachments, logs, nginx's prefix.
    workspace: PathBuf,
    /// The second-factor service, when the layout names one.
    mfa: Option<MfaService>,
}

impl Deployment {
    /// Starts the database (primary and synchronous standby), the instances one after the
    /// other (the first creates the server key the others load), and nginx, each checked
    /// through `/healthz`.
    ///
    /// # Errors
    /// The step that failed.
    pub fn start(layout: Layout) -> Result<Self, String> {
        let ports = match &layout.ports {
            Some(ports) => ports.clone(),
            None => DEPLOY_PORTS.to_vec(),
        };
        let (nginx_port, instance_ports) = ports
            .split_first()
            .ok_or("a deployment needs nginx's port and at least one instance's")?;
        let nginx = nginx_binary()?;
        let (primary, standby) = start_database()?;
        let workspace = temporary_directory("chat-deployment")?;
        let mut deployment = Self {
            nginx_port: *nginx_port,
            instances: instance_ports
                .iter()
                .map(|&port| Instance { port, child: None })
                .collect(),
            nginx: None,
            database: primary,
            standby: Some(standby),
            former: None,
            workspace,
            layout,
            mfa: None,
        };
        if let Some(binary) = deployment.layout.mfa_service.clone() {
            let port = match &deployment.layout.ports {
                Some(_) => free_port()?,
                None => MFA_PORT,
            };
            deployment.start_mfa_service(&binary, port)?;
        }
        for index in 0..deployment.instances.len() {
            deployment.start_instance(index)?;
            let port = deployment.instances[index].port;
            wait_until_healthy(port).map_err(|error| {
                // The log goes with the deployment's folder: say what it held.
                let log =
                    fs::read_to_string(deployment.workspace.join(format!("instance-{port}.log")))
                        .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!(
                    "{error}; the instance's log ends with:\n{}",
                    tail.join("\n")
                )
            })?;
        }
        deployment.start_nginx(&nginx)?;
        wait_until_healthy(deployment.nginx_port)?;
        Ok(deployment)
    }

    /// `http://127.0.0.1:PORT` of nginx.
    pub fn public_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.nginx_port)
    }

    /// The URL of the database the instances use now.
    pub fn database_url(&self) -> String {
        self.database.url("chat")
    }

    /// The folder of the deployment's own files (logs, server key, attachments, nginx).
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// The instances' ports.
    pub fn instance_ports(&self) -> Vec<u16> {
        self.instances
            .iter()
            .map(|instance| instance.port)
            .collect()
    }

    /// Makes development certificates and starts `mfa-service` on `port`, with its SQLite
    /// database and key in the workspace; waits until it accepts connections (its
    /// `/healthz` answers only clients with a certificate).
    fn start_mfa_service(&mut self, binary: &Path, port: u16) -> StepResult {
        let folder = self.workspace.join("mfa");
        let certificates = dev_certificates::generate(&folder.join("tls"), "chat cluster CA")
            .map_err(|error| format!("cannot make the service's certificates: {error}"))?;
        let log = fs::File::create(self.workspace.join("mfa-service.log"))
            .map_err(|error| format!("cannot open the service log: {error}"))?;
        let child = Command::new(binary)
            .env("MFA_BIND", format!("127.0.0.1:{port}"))
            .env(
                "MFA_DATABASE_URL",
                format!("sqlite://{}", folder.join("mfa.db").display()),
            )
            .env("MFA_KEY_FILE", folder.join("mfa.key"))
            .env("MFA_TLS_CERT", &certificates.service_cert)
            .env("MFA_TLS_KEY", &certificates.service_key)
            .env("MFA_CLIENT_CA", &certificates.ca_cert)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        self.mfa = Some(MfaService {
            port,
            certificates,
            child,
        });
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "the second-factor service never listened on {port}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The second-factor service's port, when the deployment runs one.
    pub fn mfa_port(&self) -> Option<u16> {
        self.mfa.as_ref().map(|service| service.port)
    }

    fn start_instance(&mut self, index: usize) -> StepResult {
        let port = self.instances[index].port;
        let root = &self.layout.root;
        let attachments = self.workspace.join("attachments");
        fs::create_dir_all(&attachments)
            .map_err(|error| format!("cannot create {}: {error}", attachments.display()))?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.workspace.join(format!("instance-{port}.log")))
            .map_err(|error| format!("cannot open the instance log: {error}"))?;
        // The settings of deploy/chat.env.example.
        let child = Command::new(&self.layout.server)
            .current_dir(root)
            .env("CHAT_BIND", format!("127.0.0.1:{port}"))
            .env("CHAT_DATABASE_URL", self.database_url())
            .env("CHAT_STATIC_DIR", root.join("web-client/dist"))
            .env("CHAT_SERVER_KEY_FILE", self.workspace.join("server.key"))
            .env(
                "CHAT_ATTACHMENTS_URL",
                format!("file://{}", attachments.display()),
            )
            .env("CHAT_CLIENT_IP_HEADER", "X-Forwarded-For")
            .env("CHAT_TRUSTED_PROXIES", "127.0.0.1/32")
            // The load test registers every account from 127.0.0.1.
            .env("CHAT_REGISTER_ATTEMPTS", "1000000")
            .envs(self.mfa.iter().flat_map(|service| {
                let files = &service.certificates;
                [
                    (
                        "CHAT_MFA_URL",
                        format!("https://127.0.0.1:{}/", service.port),
                    ),
                    ("CHAT_MFA_CA", files.ca_cert.display().to_string()),
                    (
                        "CHAT_MFA_CLIENT_CERT",
                        files.client_cert.display().to_string(),
                    ),
                    (
                        "CHAT_MFA_CLIENT_KEY",
                        files.client_key.display().to_string(),
                    ),
                ]
            }))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot start the server on port {port}: {error}"))?;
        self.instances[index].child = Some(child);
        Ok(())
    }

    /// Starts nginx (not as a daemon) with `deploy/nginx/nginx.conf` and `chat.conf`, in a
    /// prefix folder of the workspace; with other ports than [`DEPLOY_PORTS`], on a copy of
    /// both in which only the ports differ.
    fn start_nginx(&mut self, nginx: &Path) -> StepResult {
        let prefix = self.workspace.join("nginx");
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
        let deploy = self.layout.root.join("deploy/nginx");
        let configuration = if self.layout.ports.is_none() {
            deploy.join("nginx.conf")
        } else {
            let read = |name: &str| {
                fs::read_to_string(deploy.join(name))
                    .map_err(|error| format!("cannot read deploy/nginx/{name}: {error}"))
            };
            let mut chat = read("chat.conf")?;
            let ports = std::iter::once(self.nginx_port).chain(self.instance_ports());
            for (deployed, port) in DEPLOY_PORTS.iter().zip(ports) {
                chat = chat.replace(
                    &format!("127.0.0.1:{deployed} "),
                    &format!("127.0.0.1:{port} "),
                );
                chat = chat.replace(
                    &format!("127.0.0.1:{deployed};"),
                    &format!("127.0.0.1:{port};"),
                );
            }
            let write = |name: &str, text: &str| {
                fs::write(prefix.join(name), text)
                    .map_err(|error| format!("cannot write {name}: {error}"))
            };
            write("chat.conf", &chat)?;
            write("nginx.conf", &read("nginx.conf")?)?;
            prefix.join("nginx.conf")
        };
        let mut prefix_argument = prefix.into_os_string();
        prefix_argument.push("/");
        let child = Command::new(nginx)
            .arg("-p")
            .arg(prefix_argument)
            .arg("-c")
            .arg(configuration)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot start nginx: {error}"))?;
        self.nginx = Some(child);
        Ok(())
    }

    /// Kills instance `index` with SIGKILL (no draining, as a crash would).
    ///
    /// # Errors
    /// The instance is not running.
    pub fn kill_instance(&mut self, index: usize) -> StepResult {
        let mut child = self.instances[index]
            .child
            .take()
            .ok_or("the instance is not running")?;
        child
            .kill()
            .map_err(|error| format!("cannot kill the instance: {error}"))?;
        let _ = child.wait();
        Ok(())
    }

    /// Starts again every instance that has exited, and returns their ports.
    ///
    /// # Errors
    /// An instance that cannot be started.
    pub fn restart_exited_instances(&mut self) -> Result<Vec<u16>, String> {
        let mut restarted = Vec::new();
        for index in 0..self.instances.len() {
            let running = match self.instances[index].child.as_mut() {
                Some(child) => matches!(child.try_wait(), Ok(None)),
                None => false,
            };
            if !running {
                self.start_instance(index)?;
                restarted.push(self.instances[index].port);
            }
        }
        Ok(restarted)
    }

    /// Whether nginx has exited.
    pub fn nginx_exited(&mut self) -> bool {
        matches!(
            self.nginx.as_mut().map(Child::try_wait),
            Some(Ok(Some(_))) | None
        )
    }

    /// Kills the primary with SIGKILL, promotes the standby, and restarts every instance
    /// (SIGTERM, then started again) on the promoted database.
    ///
    /// # Errors
    /// The step that failed.
    pub fn fail_over(&mut self) -> StepResult {
        let standby = self.standby.take().ok_or("there is no standby left")?;
        self.database.kill()?;
        standby.promote()?;
        self.former = Some(std::mem::replace(&mut self.database, standby));
        self.stop_instances();
        for index in 0..self.instances.len() {
            self.start_instance(index)?;
            wait_until_healthy(self.instances[index].port)?;
        }
        Ok(())
    }

    /// Stops every instance with SIGTERM (each drains) and waits for it.
    fn stop_instances(&mut self) {
        for instance in &mut self.instances {
            if let Some(child) = instance.child.as_ref() {
                signal(child, "TERM");
            }
        }
        for instance in &mut self.instances {
            if let Some(mut child) = instance.child.take() {
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.stop_instances();
        if let Some(mut nginx) = self.nginx.take() {
            signal(&nginx, "QUIT");
            let _ = nginx.wait();
        }
        if let Some(mut service) = self.mfa.take() {
            signal(&service.child, "TERM");
            let _ = service.child.wait();
        }
        // The Postgres values stop their servers and delete their folders when dropped.
        let _ = fs::remove_dir_all(&self.workspace);
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
        apt_install(&["nginx"], "nginx is the load balancer of a deployment")?;
    }
    if installed.is_file() {
        Ok(installed.to_path_buf())
    } else {
        Err("nginx is still missing after apt-get".into())
    }
}

/// A primary with database `chat` and a standby streaming from it, the primary waiting for
/// the standby on every commit (`synchronous_standby_names`): a commit the primary
/// acknowledged is on the standby too.
fn start_database() -> Result<(Postgres, Postgres), String> {
    let primary = Postgres::start_new(
        "chat-primary",
        &[
            "wal_level=replica",
            "max_wal_senders=5",
            "max_connections=200",
        ],
    )?;
    primary.psql("postgres", "CREATE DATABASE chat")?;
    let directory = temporary_directory("chat-standby")?;
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
    let standby = Postgres::start_existing(
        primary.bin(),
        &directory,
        &data,
        &["hot_standby=on", "max_connections=200"],
    )?;
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

/// Free loopback ports for nginx and `instances` instances.
///
/// # Errors
/// No port can be found.
pub fn free_ports(instances: usize) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    while ports.len() <= instances {
        let port = free_port()?;
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    Ok(ports)
}

/// Waits until `GET /healthz` on `port` answers 200.
///
/// # Errors
/// Nothing healthy within a minute.
pub fn wait_until_healthy(port: u16) -> StepResult {
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
