//! The chat server's entry point: reads the configuration, starts logging, and serves until
//! ctrl-c.

use clap::Parser;
use server::{Application, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    let application = Application::build(config).await?;
    tracing::info!(
        port = application.port(),
        tls = application.tls_enabled(),
        "listening"
    );
    application
        .run_until(async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "cannot listen for ctrl-c");
            }
            tracing::info!("shutting down");
        })
        .await?;
    Ok(())
}
