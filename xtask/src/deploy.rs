//! `cargo xtask cluster`: a whole deployment on this machine for a person to try, from the
//! files of `deploy/` as they are ([`cluster::Deployment`]): a PostgreSQL primary with a
//! synchronous streaming standby, three server instances on ports 8081 to 8083, nginx on
//! 8080 in front, and the second-factor service (`mfa-service`) on 8443 as its own process,
//! which the instances reach over mutual TLS. It runs until Ctrl-C; an instance that ends (killed, say, to watch its
//! clients move to the others) is started again, as systemd's `Restart=on-failure` would.

use std::sync::mpsc;
use std::time::Duration;

use cluster::{Deployment, Layout};

use crate::tools::Tools;
use crate::{build_web_client, cargo, project_root, run_command, step, TaskResult};

/// Runs the deployment until Ctrl-C.
pub fn cluster() -> TaskResult {
    let tools = Tools::ensure_for_build()?;
    build_web_client(&tools)?;
    step("building the server and the second-factor service (cargo build --release)");
    run_command(cargo().args([
        "build",
        "--release",
        "--package",
        "server",
        "--package",
        "mfa",
    ]))?;
    step("PostgreSQL (primary and synchronous standby), the second-factor service, three instances, nginx");
    let root = project_root();
    let mut deployment = Deployment::start(Layout {
        server: root.join("target/release/server"),
        mfa_service: Some(root.join("target/release/mfa-service")),
        root,
        ports: None,
    })?;
    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|error| format!("cannot catch Ctrl-C: {error}"))?;
    println!(
        "\nThe chat runs at {} (three instances behind nginx, on PostgreSQL with a \
         synchronous standby; second factors in mfa-service on port {}, over mutual TLS).\n\
         Files: {}\nPress Ctrl-C to stop it.",
        deployment.public_url(),
        deployment.mfa_port().unwrap_or_default(),
        deployment.workspace().display()
    );
    loop {
        if stopped.recv_timeout(Duration::from_secs(1)).is_ok() {
            break;
        }
        for port in deployment.restart_exited_instances()? {
            println!("instance {port} ended; started it again");
        }
        if deployment.nginx_exited() {
            println!("nginx ended; stopping the rest");
            break;
        }
    }
    step("stopping: instances drain, then nginx and PostgreSQL stop");
    drop(deployment);
    Ok(())
}
