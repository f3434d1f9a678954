//! A malicious server against message chains: the operator copies a message under a new id,
//! deletes one from the middle, or moves one to another epoch, by editing the database; a
//! reader built on the client core (`client::RoomChains`, `common::message::open_message`)
//! refuses each with the exact warning, in one session and after a reload (a reader that
//! starts from the chain heads it remembered).

use client::{ChainError, ChainHead, ChainKey, RoomChains, TrustWarning};
use std::collections::BTreeMap;

use common::api::{MessagesResponse, StoredMessage};
use common::membership::Role;
use common::message::{open_message, ChainLink, MessageError};
use reqwest::StatusCode;

use crate::cast::expect_status;
use crate::helpers::{json, spawn_app, TestApp, TestRoom, TestUser};

/// alice posts `count` messages, each naming the one before, from one device.
async fn post_chain(app: &TestApp, room: &TestRoom, alice: &TestUser, count: u64) {
    let mut prev_hash = [0; 32];
    for counter in 1..=count {
        let chain = ChainLink {
            device: [9; 16],
            counter,
            prev_hash,
        };
        let inner = TestApp::text_message(room, alice, chain, &format!("note {counter}"));
        prev_hash = inner.chain_hash();
        let body = TestApp::post_request(room, alice, &inner);
        expect_status(
            app.post_message(&alice.client, &room.hex(), &body).await,
            StatusCode::CREATED,
            "post",
        )
        .await;
    }
}

/// What `reader` is served of the room's history.
async fn history(app: &TestApp, reader: &TestUser, room: &TestRoom) -> Vec<StoredMessage> {
    let page: MessagesResponse = json(
        app.get_messages(&reader.client, &room.hex(), "limit=200")
            .await,
    )
    .await;
    page.messages
}

/// Opens and chain-checks every served message as `reader`'s client would: the outcome of
/// each, by server id.
fn read(
    room: &TestRoom,
    chains: &mut RoomChains,
    messages: &[StoredMessage],
) -> Vec<Result<String, String>> {
    messages
        .iter()
        .map(|stored| {
            let inner = open_message(&stored.sealed(), &stored.sender, &room.key, &room.state)
                .map_err(|error| error.to_string())?;
            chains
                .observe(&inner, stored.id)
                .map_err(|error| error.to_string())?;
            Ok(inner.text().unwrap_or_default().to_owned())
        })
        .collect()
}

async fn room_with_bob() -> (TestApp, TestUser, TestUser, TestRoom) {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let mut room = app.create_test_room(&alice, "team").await;
    app.add_member(&mut room, &alice, &bob, Role::Member).await;
    (app, alice, bob, room)
}

#[tokio::test]
async fn a_message_copied_under_a_new_id_is_a_replay_also_after_a_reload() {
    let (app, alice, bob, room) = room_with_bob().await;
    post_chain(&app, &room, &alice, 2).await;
    let mut chains = RoomChains::default();
    let served = history(&app, &bob, &room).await;
    assert!(read(&room, &mut chains, &served).iter().all(Result::is_ok));
    let heads: BTreeMap<ChainKey, ChainHead> = chains.heads();

    // The operator stores the first message again, as if it were new.
    sqlx::query(
        "INSERT INTO messages (room_id, epoch, sender, received_at_ms, nonce, ciphertext) \
         SELECT room_id, epoch, sender, received_at_ms, nonce, ciphertext FROM messages \
         ORDER BY id LIMIT 1",
    )
    .execute(&app.database().await)
    .await
    .unwrap();
    let served = history(&app, &bob, &room).await;
    assert_eq!(served.len(), 3);
    let copy = served.last().unwrap();
    let inner = open_message(&copy.sealed(), "alice", &room.key, &room.state).unwrap();
    let replayed = chains.observe(&inner, copy.id).expect_err("same session");
    assert_eq!(
        replayed,
        ChainError::Replayed {
            sender: "alice".into(),
            epoch: 0,
            counter: 1
        }
    );
    assert_eq!(
        replayed.warning(room.room_id),
        TrustWarning::MessageReplayed {
            room_id: room.room_id,
            sender: "alice".into()
        }
    );

    // After a reload, from the remembered heads: the originals pass, the copy does not.
    let mut reloaded = RoomChains::new(heads);
    let outcomes = read(&room, &mut reloaded, &served);
    assert!(outcomes[..2].iter().all(Result::is_ok));
    assert!(
        outcomes[2]
            .as_ref()
            .is_err_and(|error| error.starts_with("message replayed")),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn a_message_deleted_from_the_middle_is_withheld() {
    let (app, alice, bob, room) = room_with_bob().await;
    post_chain(&app, &room, &alice, 3).await;
    sqlx::query(
        "DELETE FROM messages WHERE id = (SELECT id FROM messages ORDER BY id LIMIT 1 OFFSET 1)",
    )
    .execute(&app.database().await)
    .await
    .unwrap();
    let mut chains = RoomChains::default();
    let served = history(&app, &bob, &room).await;
    assert_eq!(
        read(&room, &mut chains, &served),
        vec![Ok("note 1".to_owned()), Ok("note 3".to_owned())]
    );
    assert_eq!(
        chains.withheld(room.room_id, None),
        vec![TrustWarning::MessagesWithheld {
            room_id: room.room_id,
            sender: "alice".into(),
            count: 1
        }]
    );
}

#[tokio::test]
async fn a_message_moved_to_another_epoch_does_not_open() {
    let (app, alice, bob, room) = room_with_bob().await;
    post_chain(&app, &room, &alice, 1).await;
    sqlx::query("UPDATE messages SET epoch = 1")
        .execute(&app.database().await)
        .await
        .unwrap();
    let served = history(&app, &bob, &room).await;
    assert_eq!(served[0].epoch, 1);
    // The reader uses the key it holds for the epoch the server names: wrong epoch inside.
    assert_eq!(
        open_message(&served[0].sealed(), "alice", &room.key, &room.state),
        Err(MessageError::WrongEpoch)
    );
}
