//! What the remote service adds to a login: 1,000 code verifications (a wrong 6-digit code
//! for an account with TOTP on: the whole check, the secret opened and three codes computed,
//! nothing used up) against the in-process store, then against `mfa-service` on loopback
//! over mutual TLS with a kept-alive connection, each on its own SQLite file. Prints the p50,
//! p99 and mean of each, and the difference. Run by `cargo xtask bench`.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use mfa::config::Service;
use mfa::factors::RelyingParty;
use mfa::{Factors, RemoteFactors, SecondFactors, ServerKey, ServiceConfig};
use totp_rs::{Algorithm, Secret, TOTP};

/// Verifications measured per store.
const VERIFICATIONS: usize = 1_000;
/// Verifications before measuring (connection, caches).
const WARM_UP: usize = 50;

/// Enables TOTP for `username` and returns a 6-digit code that is not valid now.
async fn enrol(factors: &dyn SecondFactors, username: &str) -> String {
    let setup = factors.totp_setup(username).await.unwrap();
    let secret = Secret::Encoded(setup.secret_base32).to_bytes().unwrap();
    let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, secret, None, String::new()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    factors
        .totp_enable(username, &totp.generate(now))
        .await
        .unwrap();
    let near: Vec<String> = (0..=4)
        .map(|step| totp.generate(now + step * 30 - 60))
        .collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|code| !near.contains(code))
        .unwrap()
}

/// Times `VERIFICATIONS` checks of `code`, in order.
async fn measure(factors: &dyn SecondFactors, username: &str, code: &str) -> Vec<Duration> {
    for _ in 0..WARM_UP {
        assert!(!factors.verify_code(username, code).await.unwrap());
    }
    let mut times = Vec::with_capacity(VERIFICATIONS);
    for _ in 0..VERIFICATIONS {
        let started = Instant::now();
        assert!(!factors.verify_code(username, code).await.unwrap());
        times.push(started.elapsed());
    }
    times.sort();
    times
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// p50, p99 and mean of sorted times, in milliseconds.
fn summary(times: &[Duration]) -> (f64, f64, f64) {
    let at =
        |fraction: f64| ms(times[((times.len() as f64 * fraction) as usize).min(times.len() - 1)]);
    let mean = ms(times.iter().sum::<Duration>()) / times.len() as f64;
    (at(0.50), at(0.99), mean)
}

#[tokio::main]
async fn main() {
    let folder = tempfile::tempdir().unwrap();
    let relying_party = RelyingParty::localhost();

    let local = Factors::open(
        &format!("sqlite://{}", folder.path().join("local.db").display()),
        ServerKey::from_bytes([7; 32]),
        &relying_party,
    )
    .await
    .unwrap();
    let code = enrol(&local, "alice").await;
    let in_process = measure(&local, "alice", &code).await;

    let certificates =
        dev_certificates::generate(&folder.path().join("tls"), "latency bench CA").unwrap();
    let config = ServiceConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", folder.path().join("service.db").display()),
        key: None,
        key_file: Some(folder.path().join("service.key")),
        tls_cert: certificates.service_cert.clone(),
        tls_key: certificates.service_key.clone(),
        client_ca: certificates.ca_cert.clone(),
        webauthn_rp_id: relying_party.id.clone(),
        webauthn_origin: relying_party.origin.clone(),
    };
    let service = Service::build(config).await.unwrap();
    let url = format!("https://127.0.0.1:{}/", service.port())
        .parse()
        .unwrap();
    tokio::spawn(service.run_until(std::future::pending()));
    let remote = RemoteFactors::new(
        &url,
        &certificates.ca_cert,
        &certificates.client_cert,
        &certificates.client_key,
    )
    .unwrap();
    let code = enrol(&remote, "alice").await;
    let over_mtls = measure(&remote, "alice", &code).await;

    println!("{VERIFICATIONS} code verifications each (after {WARM_UP} to warm up):");
    println!("| store | p50 ms | p99 ms | mean ms |");
    println!("|---|---|---|---|");
    let local = summary(&in_process);
    let remote = summary(&over_mtls);
    println!(
        "| in-process (SQLite) | {:.3} | {:.3} | {:.3} |",
        local.0, local.1, local.2
    );
    println!(
        "| mfa-service over mutual TLS (loopback) | {:.3} | {:.3} | {:.3} |",
        remote.0, remote.1, remote.2
    );
    println!(
        "| added by the remote service | {:.3} | {:.3} | {:.3} |",
        remote.0 - local.0,
        remote.1 - local.1,
        remote.2 - local.2
    );
}
