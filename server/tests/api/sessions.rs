//! Sessions: listing them, revoking one (its cookie stops working and its WebSocket is
//! closed), revoking the others, logging out, and the idle expiry.

use common::api::SessionsResponse;
use reqwest::StatusCode;

use crate::helpers::{error_message, json, now_ms, spawn_app};
use crate::security_client::{assert_session_ended, HOME_IP};

#[tokio::test]
async fn the_list_shows_each_session_with_the_current_one_marked() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let _bob = app.register_user("bob").await;
    let laptop = app.new_browser(&alice, "198.51.100.20", None).await;

    let list: SessionsResponse = json(app.sessions(&alice.client).await).await;
    assert_eq!(list.sessions.len(), 2, "bob's session is not listed");
    let [newest, oldest] = [&list.sessions[0], &list.sessions[1]];
    assert!(newest.created_at_ms >= oldest.created_at_ms, "newest first");
    assert_eq!((newest.current, oldest.current), (false, true));
    assert_eq!(newest.ip, "198.51.100.20");
    assert_eq!(newest.user_agent, "test-browser/1.0");
    assert_eq!(oldest.ip, "127.0.0.1");
    assert_ne!(newest.id, oldest.id);
    // The public id is not the cookie's token.
    let cookie = app.jar_cookie(&laptop.jar);
    assert!(!cookie.to_str().unwrap().contains(&newest.id));
    assert!(newest.last_seen_at_ms <= now_ms() as i64);

    let from_laptop: SessionsResponse = json(app.sessions(&laptop.client).await).await;
    let current: Vec<bool> = from_laptop.sessions.iter().map(|s| s.current).collect();
    assert_eq!(current, [true, false]);

    let response = app.sessions(&app.anonymous).await;
    assert_eq!(
        error_message(response, StatusCode::UNAUTHORIZED).await,
        "not logged in"
    );
}

#[tokio::test]
async fn revoking_a_session_ends_its_cookie_and_closes_its_websocket() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let bob = app.register_user("bob").await;
    let phone = app.new_browser(&alice, HOME_IP, None).await;
    let mut phone_socket = app.connect_browser_ws(&phone).await;
    let mut desk_socket = app.connect_ws(&alice).await;

    let list: SessionsResponse = json(app.sessions(&alice.client).await).await;
    let phone_id = list
        .sessions
        .iter()
        .find(|session| !session.current)
        .unwrap()
        .id
        .clone();
    // Another user cannot revoke it, and unknown ids are 404.
    let response = app.revoke_session(&bob.client, &phone_id).await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "session not found"
    );
    let response = app.revoke_session(&alice.client, "no-such-id").await;
    assert_eq!(
        error_message(response, StatusCode::NOT_FOUND).await,
        "session not found"
    );
    app.assert_logged_in(&phone.client, "not revoked yet").await;

    let response = app.revoke_session(&alice.client, &phone_id).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    app.assert_logged_out(&phone.client, "the revoked session")
        .await;
    assert_session_ended(&mut phone_socket).await;
    app.assert_logged_in(&alice.client, "the revoking session")
        .await;
    let list: SessionsResponse = json(app.sessions(&alice.client).await).await;
    assert_eq!(list.sessions.len(), 1);

    // The other socket stays open and still gets events.
    let room = app.create_test_room(&alice, "still here").await;
    let body = crate::helpers::TestApp::sealed_text(&room, &alice, 1, "hello");
    app.post_message(&alice.client, &room.hex(), &body).await;
    assert!(matches!(
        crate::ws_client::next_event(&mut desk_socket).await,
        common::api::ServerEvent::Message { .. }
    ));
    // A handshake with the revoked cookie is refused.
    let refused = app
        .try_connect_ws(Some(app.jar_cookie(&phone.jar)), None)
        .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn revoking_the_current_session_clears_its_cookie() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let list: SessionsResponse = json(app.sessions(&alice.client).await).await;
    let response = app
        .revoke_session(&alice.client, &list.sessions[0].id)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    app.assert_logged_out(&alice.client, "revoked itself").await;
}

#[tokio::test]
async fn revoke_others_keeps_only_the_caller() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let phone = app.new_browser(&alice, HOME_IP, None).await;
    let laptop = app.new_browser(&alice, HOME_IP, None).await;
    let mut laptop_socket = app.connect_browser_ws(&laptop).await;
    let bob = app.register_user("bob").await;

    let response = app.revoke_other_sessions(&phone.client).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    app.assert_logged_in(&phone.client, "the caller").await;
    app.assert_logged_out(&alice.client, "the first session")
        .await;
    app.assert_logged_out(&laptop.client, "the laptop").await;
    assert_session_ended(&mut laptop_socket).await;
    app.assert_logged_in(&bob.client, "another user").await;
    let list: SessionsResponse = json(app.sessions(&phone.client).await).await;
    assert_eq!(list.sessions.len(), 1);
    assert!(list.sessions[0].current);
}

#[tokio::test]
async fn logging_out_closes_the_sessions_websocket() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let mut socket = app.connect_ws(&alice).await;
    let response = app.logout(&alice.client).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_session_ended(&mut socket).await;
}

#[tokio::test]
async fn a_session_unused_for_the_idle_time_ends() {
    let app = spawn_app().await;
    let alice = app.register_user("alice").await;
    let phone = app.new_browser(&alice, HOME_IP, None).await;
    let list: SessionsResponse = json(app.sessions(&phone.client).await).await;
    let desk_id = list
        .sessions
        .iter()
        .find(|session| !session.current)
        .unwrap()
        .id
        .clone();
    // The default idle time is a week; make the first session's last use older than that.
    let database = app.database().await;
    let idle_ms: i64 = 10_080 * 60 * 1000;
    let stale = now_ms() as i64 - idle_ms - 60_000;
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE public_id = $2")
        .bind(stale)
        .bind(&desk_id)
        .execute(&database)
        .await
        .unwrap();
    let list: SessionsResponse = json(app.sessions(&phone.client).await).await;
    assert_eq!(list.sessions.len(), 1, "an idle session is not listed");
    app.assert_logged_out(&alice.client, "the idle session")
        .await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE public_id = $1")
        .bind(&desk_id)
        .fetch_one(&database)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the idle session is deleted");
    app.assert_logged_in(&phone.client, "the used session")
        .await;
}

#[tokio::test]
async fn the_idle_time_is_configurable() {
    let app = crate::helpers::spawn_app_with(|config| config.session_idle_minutes = 0).await;
    let (request, _, _) = crate::helpers::TestApp::registration("alice", "a long passphrase");
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = crate::helpers::client_with_jar(jar);
    let response = app.register(&client, &request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    app.assert_logged_out(&client, "no idle time at all").await;
}
