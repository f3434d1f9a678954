//! Faults of a deployment under load (issue 9): three server instances on PostgreSQL with a
//! synchronous standby, nginx in front, and 200 clients through nginx (25 rooms of 8
//! members, 50 posters, 20,000 messages). Each test prints its counts last and checks that
//! every acknowledged message is in the database and reached every member of its room, once
//! and in order, and that no message is stored twice:
//!
//! - with no fault;
//! - with one instance killed (SIGKILL) mid-load: its clients connect again through nginx
//!   to the others and resume from the last id they saw;
//! - with the PostgreSQL primary killed (SIGKILL) mid-load, the standby promoted and the
//!   instances restarted on it.
//!
//! They need the server binary (`CHAT_SERVER_BIN`), PostgreSQL and nginx, which
//! `cargo xtask test` provides; without `CHAT_SERVER_BIN` they say so and pass. Every wait
//! is bounded, and only 127.0.0.1 is contacted.

#![allow(clippy::unwrap_used, missing_docs)]

mod load;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{free_ports, Deployment, Layout};
use load::{Account, Posted, Streams};

/// Clients, all listening.
const CLIENTS: usize = 200;
/// Members per room; each client is in one room.
const ROOM_SIZE: usize = 8;
/// Posters per room (50 in all, in 25 rooms).
const POSTERS_PER_ROOM: usize = 2;
/// Messages in all.
const MESSAGES: usize = 20_000;
/// How long the listeners may take to receive everything once posting ends.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// What happens mid-load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    KillInstance,
    KillPrimary,
}

#[test]
fn twenty_thousand_messages_through_nginx() {
    run(Fault::None);
}

#[test]
fn an_instance_killed_mid_load_loses_nothing() {
    run(Fault::KillInstance);
}

#[test]
fn the_primary_killed_mid_load_loses_nothing_acknowledged() {
    run(Fault::KillPrimary);
}

fn run(fault: Fault) {
    let Ok(server) = std::env::var("CHAT_SERVER_BIN") else {
        eprintln!("skipped: set CHAT_SERVER_BIN (cargo xtask test does) to run the fault tests");
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let deployment = Deployment::start(Layout {
        root,
        server: server.into(),
        ports: Some(free_ports(3).unwrap()),
        mfa_service: None,
    })
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let deployment = Arc::new(Mutex::new(deployment));
    runtime.block_on(load_with(fault, deployment));
}

async fn load_with(fault: Fault, deployment: Arc<Mutex<Deployment>>) {
    let started = Instant::now();
    let base = deployment.lock().unwrap().public_url();

    // Accounts and rooms.
    let mut registrations = Vec::new();
    for index in 0..CLIENTS {
        let base = base.clone();
        registrations.push(tokio::spawn(async move {
            load::register(&base, &format!("client{index:03}")).await
        }));
    }
    let mut accounts = Vec::new();
    for registration in registrations {
        accounts.push(registration.await.unwrap());
    }
    let mut rooms = Vec::new();
    for first in (0..CLIENTS).step_by(ROOM_SIZE) {
        let members = (first..first + ROOM_SIZE).collect();
        rooms.push(Arc::new(
            load::create_load_room(&base, &accounts, members).await,
        ));
    }
    let accounts: Vec<Arc<Account>> = accounts.into_iter().map(Arc::new).collect();
    println!("set up in {:.1} s", started.elapsed().as_secs_f64());

    // Every client listens.
    let stop = Arc::new(AtomicBool::new(false));
    let (connected, mut connections) = tokio::sync::mpsc::channel(CLIENTS);
    let mut streams: Vec<Streams> = Vec::new();
    let mut listeners = Vec::new();
    for room in &rooms {
        for &member in &room.members {
            let stream = Streams::default();
            streams.push(stream.clone());
            listeners.push(tokio::spawn(load::listen(
                base.clone(),
                accounts[member].clone(),
                vec![room.id],
                stream,
                stop.clone(),
                connected.clone(),
            )));
        }
    }
    for _ in 0..CLIENTS {
        connections.recv().await.unwrap();
    }

    // Posting, with the fault a third of the way through.
    let posted = Arc::new(Mutex::new(Posted::default()));
    let per_poster = MESSAGES / (rooms.len() * POSTERS_PER_ROOM);
    let mut posters = Vec::new();
    for room in &rooms {
        for &member in &room.members[..POSTERS_PER_ROOM] {
            posters.push(tokio::spawn(load::post_messages(
                base.clone(),
                accounts[member].clone(),
                room.clone(),
                per_poster,
                posted.clone(),
            )));
        }
    }
    let posting = Instant::now();
    if fault != Fault::None {
        while posted.lock().unwrap().acknowledged.len() < MESSAGES / 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let deployment = deployment.clone();
        let what = tokio::task::spawn_blocking(move || {
            let mut deployment = deployment.lock().unwrap();
            match fault {
                Fault::KillInstance => {
                    deployment.kill_instance(0).unwrap();
                    "killed instance 1 of 3 (SIGKILL)"
                }
                Fault::KillPrimary => {
                    deployment.fail_over().unwrap();
                    "killed the primary (SIGKILL), promoted the standby, restarted the instances"
                }
                Fault::None => unreachable!(),
            }
        })
        .await
        .unwrap();
        println!(
            "{what} after {} acknowledged posts",
            posted.lock().unwrap().acknowledged.len()
        );
    }
    for poster in posters {
        poster.await.unwrap();
    }
    let posting = posting.elapsed();

    // What the database holds now, and every listener catching up with it.
    let database_url = deployment.lock().unwrap().database_url();
    let mut stored = Vec::new();
    for room in &rooms {
        stored.push(load::stored(&database_url, room).await);
    }
    let complete = |streams: &[Streams]| {
        let mut index = 0;
        for (room, stored) in rooms.iter().zip(&stored) {
            for _ in &room.members {
                let received = streams[index].lock().unwrap();
                let ids = received.get(&room.id).map(|s| s.ids.len()).unwrap_or(0);
                if ids < stored.ids.len() {
                    return false;
                }
                index += 1;
            }
        }
        true
    };
    let draining = Instant::now();
    while !complete(&streams) && draining.elapsed() < DRAIN_DEADLINE {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut reconnects = 0;
    for listener in listeners {
        reconnects += listener.await.unwrap();
    }

    // The counts.
    let posted = posted.lock().unwrap();
    let stored_ids: std::collections::BTreeSet<(load::RoomIdKey, i64)> = rooms
        .iter()
        .zip(&stored)
        .flat_map(|(room, stored)| stored.ids.iter().map(move |id| (room.id.0, *id)))
        .collect();
    let lost = posted
        .acknowledged
        .iter()
        .filter(|(room, id)| !stored_ids.contains(&(room.0, *id)))
        .count();
    let duplicated: usize = stored.iter().map(|stored| stored.duplicated).sum();
    let (mut delivered, mut missing, mut redelivered, mut out_of_order, mut wrong) =
        (0, 0, 0, 0, 0);
    let mut index = 0;
    for (room, stored) in rooms.iter().zip(&stored) {
        for _ in &room.members {
            let received = streams[index].lock().unwrap();
            let stream = received.get(&room.id).cloned().unwrap_or_default();
            delivered += stream.ids.len();
            redelivered += stream.redelivered;
            out_of_order += stream.out_of_order;
            if stream.ids != stored.ids {
                wrong += 1;
                missing += stored
                    .ids
                    .iter()
                    .filter(|id| !stream.ids.contains(id))
                    .count();
            }
            index += 1;
        }
    }
    let stored_count: usize = stored.iter().map(|stored| stored.ids.len()).sum();
    println!(
        "{fault:?}: {} posts in {:.1} s ({:.0}/s); sent {}, acknowledged {}, stored {stored_count}, \
         delivered {delivered} (expected {}), lost {lost}, duplicated {duplicated}, missing \
         deliveries {missing}, out of order {out_of_order}, redelivered and dropped by id \
         {redelivered}, listeners that connected again {reconnects}",
        posted.sent,
        posting.as_secs_f64(),
        posted.sent as f64 / posting.as_secs_f64(),
        posted.sent,
        posted.acknowledged.len(),
        stored_count * ROOM_SIZE,
    );
    assert_eq!(lost, 0, "acknowledged messages missing from the database");
    assert_eq!(duplicated, 0, "messages stored twice");
    assert_eq!(out_of_order, 0, "messages out of their room's order");
    assert_eq!(
        wrong, 0,
        "listeners whose messages differ from the database's"
    );
    assert_eq!(delivered, stored_count * ROOM_SIZE);
    if fault == Fault::None {
        assert_eq!(posted.acknowledged.len(), MESSAGES);
        assert_eq!(redelivered, 0);
    }
}
