//! The relay benchmark (`cargo xtask bench`, or `cargo bench -p server --bench relay`), on
//! loopback only, every wait bounded:
//!
//! 1. **Fan-out**, for each room size in `--members`: the project's relay (the real server
//!    in this process on a fresh SQLite file, real accounts, a real room, real sealed
//!    messages) and a bare axum broadcast relay written here ([`baseline`]: no
//!    authentication, storage or crypto) each get the same prepared messages from the same
//!    number of senders, posting one after the other, while every member listens on a
//!    WebSocket. Printed for each: posts/s, deliveries/s, p50 and p99 send-to-receive
//!    latency (from just before the POST to the frame's arrival, matched by nonce), and the
//!    project's deliveries/s as a fraction of the baseline's.
//! 2. **Durable posts/s**: `--durable-posts` posts with `--durable-concurrency` in flight,
//!    nobody listening, each acknowledged once its group commit is durable; on SQLite, and
//!    on PostgreSQL when `CHAT_BENCH_POSTGRES_URL` names a server (a fresh database is
//!    created there for the run).
//! 3. **Idle connections**: when `CHAT_SERVER_BIN` names the server binary, it runs as its own
//!    process and `--idle-connections` authenticated WebSockets open and stay idle; the
//!    growth of its resident set per connection is printed, and again once every connection
//!    received `--idle-burst` messages posted at once (the write buffers they left behind).

mod baseline;
mod chat;
mod idle;
mod load;

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::Connection as _;

/// What every step returns: errors are reported as text and end the run.
pub type BenchResult<T> = Result<T, String>;

/// What to run: `cargo bench -p server --bench relay -- --members 10,100 --senders 20`.
#[derive(Debug, Clone, clap::Parser)]
struct Flags {
    /// Room sizes to measure, all members connected (the fan-out), comma-separated (0
    /// skips the fan-out runs).
    #[arg(long, value_delimiter = ',', default_values_t = [10, 100])]
    members: Vec<usize>,
    /// Members who post at the same time, each waiting for its answer before the next
    /// (at most the room size).
    #[arg(long, default_value_t = 50)]
    senders: usize,
    /// Messages each sender posts.
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Bytes of text in each message (before padding and encryption).
    #[arg(long, default_value_t = 256)]
    payload: usize,
    /// Posts of the durable run (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    durable_posts: usize,
    /// Posts in flight at once in the durable run.
    #[arg(long, default_value_t = 128)]
    durable_concurrency: usize,
    /// Idle WebSockets to open (0 skips the idle run).
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// Accounts the idle WebSockets are spread over.
    #[arg(long, default_value_t = 50)]
    idle_users: usize,
    /// Messages every idle connection then receives at once, before memory is read again.
    #[arg(long, default_value_t = 10)]
    idle_burst: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One fan-out measurement's shape.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Members connected.
    pub members: usize,
    /// Members posting.
    pub senders: usize,
}

fn row(name: &str, workload: Workload, outcome: &load::Outcome, baseline: Option<f64>) {
    let ratio = baseline.map_or("1.00".to_owned(), |baseline| {
        format!("{:.2}", outcome.deliveries_per_second() / baseline)
    });
    let lost = outcome.expected - outcome.deliveries;
    println!(
        "| {name:<14} | {:>7} | {:>7} | {:>7} | {:>8.0} | {:>12.0} | {:>7.1} | {:>7.1} | {:>6} | {ratio:>11} |",
        workload.members,
        workload.senders,
        outcome.posts,
        outcome.posts_per_second(),
        outcome.deliveries_per_second(),
        outcome.latency_ms(0.5),
        outcome.latency_ms(0.99),
        lost,
    );
}

/// A fresh database on the PostgreSQL server at `admin_url`, for one run.
async fn fresh_postgres_database(admin_url: &str) -> BenchResult<String> {
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| format!("{admin_url}: {e}"))?;
    let name = format!("relay_bench_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .map_err(|e| e.to_string())?;
    let (server, _) = admin_url
        .rsplit_once('/')
        .ok_or("a PostgreSQL URL ends with a database name")?;
    Ok(format!("{server}/{name}"))
}

async fn run(flags: Flags) -> BenchResult<()> {
    println!(
        "fan-out: {} messages of {} bytes from each sender, send-to-receive latency",
        flags.messages, flags.payload
    );
    println!("| relay          | fan-out | senders |   posts |  posts/s | deliveries/s | p50 ms  | p99 ms  |   lost | vs baseline |");
    println!("|----------------|---------|---------|---------|----------|--------------|---------|---------|--------|-------------|");
    for &members in flags.members.iter().filter(|&&members| members > 0) {
        let workload = Workload {
            members,
            senders: flags.senders.min(members),
        };
        let deployment = chat::deploy(None, members).await?;
        let prepared =
            Arc::new(deployment.prepare(workload.senders, flags.messages, flags.payload)?);
        let base_outcome = baseline::measure(workload, prepared.clone()).await?;
        row("bare broadcast", workload, &base_outcome, None);
        // The same messages again: their nonces find their send times anew.
        let outcome = chat::fan_out(&deployment, prepared, workload).await?;
        row(
            "chat (SQLite)",
            workload,
            &outcome,
            Some(base_outcome.deliveries_per_second()),
        );
    }

    println!();
    if flags.durable_posts == 0 {
        return idle(&flags).await;
    }
    println!(
        "durable posts: {} posts, {} in flight, nobody listening, each acknowledged once committed",
        flags.durable_posts, flags.durable_concurrency
    );
    let mut backends = vec![("SQLite", None)];
    match std::env::var("CHAT_BENCH_POSTGRES_URL") {
        Ok(admin_url) => backends.push(("PostgreSQL", Some(admin_url))),
        Err(_) => {
            println!("(PostgreSQL skipped: set CHAT_BENCH_POSTGRES_URL, as cargo xtask bench does)")
        }
    }
    for (name, admin_url) in backends {
        let database_url = match admin_url {
            Some(admin_url) => Some(fresh_postgres_database(&admin_url).await?),
            None => None,
        };
        let deployment = chat::deploy(database_url, 10).await?;
        let (posts, elapsed) = chat::durable(
            &deployment,
            flags.durable_concurrency,
            flags.durable_posts,
            flags.payload,
        )
        .await?;
        println!(
            "{name}: {posts} posts in {:.2} s = {:.0} durable posts/s",
            elapsed.as_secs_f64(),
            posts as f64 / elapsed.as_secs_f64()
        );
    }

    println!();
    idle(&flags).await
}

async fn idle(flags: &Flags) -> BenchResult<()> {
    if flags.idle_connections == 0 {
        return Ok(());
    }
    match std::env::var_os("CHAT_SERVER_BIN") {
        Some(server_bin) => {
            let memory = idle::measure(
                &PathBuf::from(server_bin),
                flags.idle_connections,
                flags.idle_users,
                flags.idle_burst,
            )
            .await?;
            println!(
                "idle connections: {} authenticated WebSockets; server resident set {} KiB before, {} KiB with them = {:.1} KiB each",
                memory.connections,
                memory.before_kib,
                memory.after_kib,
                memory.kib_each()
            );
            println!(
                "after {} messages at once to every connection: {} KiB = {:.1} KiB each",
                memory.burst,
                memory.after_burst_kib,
                memory.kib_each_after_burst()
            );
        }
        None => println!(
            "(idle connections skipped: set CHAT_SERVER_BIN to the server binary, as cargo xtask bench does)"
        ),
    }
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("cannot start tokio: {error}"));
    let flags = <Flags as clap::Parser>::parse();
    if let Err(error) = runtime.block_on(run(flags)) {
        eprintln!("relay bench failed: {error}");
        std::process::exit(1);
    }
}
