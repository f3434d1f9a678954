//! `mfa-service`: the chat's second factors as a service of their own, over mutual TLS.

use clap::Parser;
use mfa::config::Service;
use mfa::ServiceConfig;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = ServiceConfig::parse();
    let service = match Service::build(config).await {
        Ok(service) => service,
        Err(error) => {
            eprintln!("mfa-service: {}", mfa::error::error_chain(&error));
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(port = service.port(), "second-factor service listening");
    // Ctrl-C or SIGTERM (systemd's stop) end it after the requests in flight.
    let shutdown = async {
        let interrupt = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
        tracing::info!("stopping");
    };
    match service.run_until(shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mfa-service: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
