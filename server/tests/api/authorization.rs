//! Every endpoint against every role: a table of the answer each caller gets, checked cell by
//! cell and printed. A new endpoint without a row fails the test, and so does an error whose
//! code the endpoint's definition does not list.
//!
//! The callers are those of a room ([`Cast`]): nobody (no cookie), eve (registered, no
//! relation to the room), carol (member), bob (admin), alice (owner), erin (removed), frank
//! (banned), and a session of carol's that was revoked. Each row sends one request per caller,
//! in that order, with a body that is valid where the caller may act (so the authorized
//! cells show the endpoint working) or fails a check after authorization when a valid one
//! would change what later rows need (a wrong password for deleting the account).

use common::api::endpoints::{
    Account, AnnounceAttachment, AppendLog, AttachmentStatusOf, ChangePassword, Connect,
    CreateRoom, DeleteAccount, DismissNotices, DownloadAttachment, Endpoint, GetClientState,
    GetEnvelopes, GetLog, Health, ListJoinRequests, ListMessages, ListRooms, Login, LoginPasskey,
    LoginTotp, Logout, Me, OpenApi, PasskeyBegin, PasskeyFinish, PasskeyRemove, PostMessage,
    Prelogin, PutClientState, PutEnvelopes, RefuseJoinRequest, Register, RequestKey, RequestToJoin,
    RevokeOtherSessions, RevokeSession, Session, Sessions, SetTrustedNetworks, TotpDisable,
    TotpEnable, TotpSetup, UploadChunk, UserIdentity, ENDPOINTS,
};
use common::api::{
    CreateRoomRequest, DeleteAccountRequest, ErrorBody, KeyRequestBody, LoginRequest,
    NewAttachmentRequest, PasskeyChangeRequest, PasskeyFinishRequest, PasskeyLoginRequest,
    PasswordChangeRequest, PreloginRequest, PutClientStateRequest, PutEnvelopesRequest,
    SessionsResponse, TotpCodeRequest, TotpLoginRequest, TrustedNetworksRequest,
};
use common::membership::{invite_token_hash, LogAction};
use common::room_key::{create_room, KeyEnvelope, RoomMetadata};
use common::wire::{Base64, Base64Array};
use common::OsRng;
use reqwest::cookie::Jar;
use reqwest::{Client, Response, StatusCode};
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::cast::{Cast, TOKEN};
use crate::helpers::{client_with_jar, json, now_ms, spawn_app_with, TestApp, TestUser, TEST_KDF};
use crate::passkeys::{bogus_assertion, bogus_registration};

/// Who calls, in the order of the table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    NonMember,
    Member,
    Admin,
    Owner,
    Removed,
    Banned,
    Revoked,
}

const CALLERS: [Caller; 8] = [
    Caller::Anonymous,
    Caller::NonMember,
    Caller::Member,
    Caller::Admin,
    Caller::Owner,
    Caller::Removed,
    Caller::Banned,
    Caller::Revoked,
];

impl Caller {
    fn label(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::NonMember => "non-member",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
            Self::Removed => "removed",
            Self::Banned => "banned",
            Self::Revoked => "revoked",
        }
    }
}

/// Shorthands for the cells.
const A401: &str = "401 not_logged_in";
const R404: &str = "404 not_found";

/// One row per endpoint (by its id): the answer of each caller, in [`CALLERS`] order, as
/// the status alone for a success and `status code` for an error.
#[rustfmt::skip]
const TABLE: &[(&str, [&str; 8])] = &[
    // Accounts and logins: public, and a session changes nothing.
    ("register", ["409 username_taken"; 8]),
    ("prelogin", ["200"; 8]),
    ("login", ["401 invalid_credentials"; 8]),
    ("login_totp", ["401 login_expired"; 8]),
    ("login_passkey", ["401 login_expired"; 8]),
    ("session", ["200"; 8]),
    ("openapi", ["200"; 8]),
    ("health", ["200"; 8]),
    // The caller's own account: any live session, whatever the room.
    ("me", [A401, "200", "200", "200", "200", "200", "200", A401]),
    ("user_identity", [A401, "200", "200", "200", "200", "200", "200", A401]),
    ("totp_setup", [A401, "200", "200", "200", "200", "200", "200", A401]),
    ("totp_enable", [A401, "401 invalid_code", "401 invalid_code", "401 invalid_code", "401 invalid_code", "401 invalid_code", "401 invalid_code", A401]),
    ("totp_disable", [A401, "409 conflict", "409 conflict", "409 conflict", "409 conflict", "409 conflict", "409 conflict", A401]),
    ("passkey_begin", [A401, "200", "200", "200", "200", "200", "200", A401]),
    ("passkey_finish", [A401, "401 invalid_code", "401 invalid_code", "401 invalid_code", "401 invalid_code", "401 invalid_code", "401 invalid_code", A401]),
    ("passkey_remove", [A401, "409 conflict", "409 conflict", "409 conflict", "409 conflict", "409 conflict", "409 conflict", A401]),
    ("sessions", [A401, "200", "200", "200", "200", "200", "200", A401]),
    ("revoke_session", [A401, R404, R404, R404, R404, R404, R404, A401]),
    ("revoke_other_sessions", [A401, "204", "204", "204", "204", "204", "204", A401]),
    ("account", [A401, "200", "200", "200", "200", "200", "200", A401]),
    ("dismiss_notices", [A401, "204", "204", "204", "204", "204", "204", A401]),
    ("set_trusted_networks", [A401, "204", "204", "204", "204", "204", "204", A401]),
    ("change_password", [A401, "401 invalid_password", "401 invalid_password", "401 invalid_password", "401 invalid_password", "401 invalid_password", "401 invalid_password", A401]),
    ("delete_account", [A401, "401 invalid_password", "401 invalid_password", "401 invalid_password", "401 invalid_password", "401 invalid_password", "401 invalid_password", A401]),
    ("get_client_state", [A401, "200", "200", "200", "200", "200", "200", A401]),
    ("put_client_state", [A401, "204", "204", "204", "204", "204", "204", A401]),
    ("create_room", [A401, "201", "201", "201", "201", "201", "201", A401]),
    ("list_rooms", [A401, "200", "200", "200", "200", "200", "200", A401]),
    // The room: members only; everyone else is told it does not exist.
    ("get_log", [A401, R404, "200", "200", "200", R404, R404, A401]),
    ("append_log", [A401, R404, "403 forbidden", "201", "201", R404, R404, A401]),
    ("get_envelopes", [A401, R404, "200", "200", "200", R404, R404, A401]),
    ("put_envelopes", [A401, R404, "204", "204", "204", R404, R404, A401]),
    ("request_key", [A401, R404, "202", "202", "202", R404, R404, A401]),
    ("list_messages", [A401, R404, "200", "200", "200", R404, R404, A401]),
    ("post_message", [A401, R404, "201", "201", "201", R404, R404, A401]),
    ("request_to_join", [A401, "202", "409 already_member", "409 already_member", "409 already_member", "202", "403 banned", A401]),
    ("list_join_requests", [A401, R404, "403 forbidden", "200", "200", R404, R404, A401]),
    ("refuse_join_request", [A401, R404, "403 forbidden", "204", "204", R404, R404, A401]),
    ("announce_attachment", [A401, R404, "201", "201", "201", R404, R404, A401]),
    ("attachment_status", [A401, R404, "200", "200", "200", R404, R404, A401]),
    ("upload_chunk", [A401, R404, "403 forbidden", "403 forbidden", "204", R404, R404, A401]),
    ("download_attachment", [A401, R404, "200", "200", "200", R404, R404, A401]),
    // Without the WebSocket upgrade headers.
    ("connect", [A401, "400 bad_request", "400 bad_request", "400 bad_request", "400 bad_request", "400 bad_request", "400 bad_request", A401]),
    // Last, as it ends the callers' sessions.
    ("logout", [A401, "204", "204", "204", "204", "204", "204", A401]),
];

/// The attachment alice announced before the table runs: 100 bytes in one chunk.
const ATTACHMENT_ID: [u8; 16] = [0xa7; 16];
const ATTACHMENT_SIZE: u64 = 100;

struct Fixture {
    cast: Cast,
    /// carol's second browser, whose session carol revoked.
    revoked: Client,
}

impl Fixture {
    async fn new() -> Self {
        // Generous throttles: the table makes dozens of password checks from one address.
        let app = spawn_app_with(|config| {
            config.login_attempts = 10_000;
            config.register_attempts = 10_000;
        })
        .await;
        let cast = Cast::on(app).await;
        let app = &cast.app;
        let revoked = client_with_jar(Arc::new(Jar::default()));
        let response = app
            .login(&revoked, &cast.carol.username, cast.carol.auth_key)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let sessions: SessionsResponse = json(app.sessions(&cast.carol.client).await).await;
        let other = sessions
            .sessions
            .iter()
            .find(|session| !session.current)
            .expect("carol's second session");
        let response = app.revoke_session(&cast.carol.client, &other.id).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let response = app
            .call::<AnnounceAttachment>(
                &cast.alice.client,
                &[&cast.hex()],
                &NewAttachmentRequest {
                    id: Base64Array(ATTACHMENT_ID),
                    size: ATTACHMENT_SIZE,
                    chunk_size: 16_384,
                },
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        Self { cast, revoked }
    }

    /// The user who signs for `caller` (carol for her revoked session, eve for nobody).
    fn user(&self, caller: Caller) -> &TestUser {
        let cast = &self.cast;
        match caller {
            Caller::Anonymous | Caller::NonMember => &cast.eve,
            Caller::Member | Caller::Revoked => &cast.carol,
            Caller::Admin => &cast.bob,
            Caller::Owner => &cast.alice,
            Caller::Removed => &cast.erin,
            Caller::Banned => &cast.frank,
        }
    }

    fn client(&self, caller: Caller) -> &Client {
        match caller {
            Caller::Anonymous => &self.cast.app.anonymous,
            Caller::Revoked => &self.revoked,
            _ => &self.user(caller).client,
        }
    }

    /// Calls endpoint `id` as `caller`.
    #[allow(clippy::too_many_lines)]
    async fn call(&mut self, id: &str, caller: Caller) -> Response {
        let user = self.user(caller);
        let client = self.client(caller).clone();
        let app: &TestApp = &self.cast.app;
        let room = self.cast.hex();
        let attachment = hex::encode(ATTACHMENT_ID);
        let auth_key = Base64Array(user.auth_key);
        let mut wrong_key = user.auth_key;
        wrong_key[0] ^= 1;
        let bogus = Base64(vec![0; 32]);
        match id {
            "register" => {
                let (request, _, _) = TestApp::registration("alice", "whatever");
                app.call::<Register>(&client, &[], &request).await
            }
            "prelogin" => {
                let request = PreloginRequest {
                    username: user.username.clone(),
                };
                app.call::<Prelogin>(&client, &[], &request).await
            }
            "login" => {
                let request = LoginRequest {
                    username: user.username.clone(),
                    auth_key: Base64Array(wrong_key),
                };
                app.call::<Login>(&client, &[], &request).await
            }
            "login_totp" => {
                let request = TotpLoginRequest {
                    challenge: bogus,
                    code: "123456".into(),
                };
                app.call::<LoginTotp>(&client, &[], &request).await
            }
            "login_passkey" => {
                let request = PasskeyLoginRequest {
                    challenge: bogus,
                    credential: bogus_assertion(),
                };
                app.call::<LoginPasskey>(&client, &[], &request).await
            }
            "session" => app.call::<Session>(&client, &[], &()).await,
            "openapi" => app.call::<OpenApi>(&client, &[], &()).await,
            "health" => app.call::<Health>(&client, &[], &()).await,
            "me" => app.call::<Me>(&client, &[], &()).await,
            "user_identity" => app.call::<UserIdentity>(&client, &["alice"], &()).await,
            "totp_setup" => app.call::<TotpSetup>(&client, &[], &()).await,
            "totp_enable" | "totp_disable" => {
                // Not a code at all, so it can never match the pending secret.
                let request = TotpCodeRequest {
                    code: "nope".into(),
                    auth_key,
                };
                if id == "totp_enable" {
                    app.call::<TotpEnable>(&client, &[], &request).await
                } else {
                    app.call::<TotpDisable>(&client, &[], &request).await
                }
            }
            "passkey_begin" | "passkey_remove" => {
                let request = PasskeyChangeRequest {
                    auth_key,
                    totp_code: None,
                };
                if id == "passkey_begin" {
                    app.call::<PasskeyBegin>(&client, &[], &request).await
                } else {
                    app.call::<PasskeyRemove>(&client, &["bm8tc3VjaC1rZXk"], &request)
                        .await
                }
            }
            "passkey_finish" => {
                let request: PasskeyFinishRequest =
                    serde_json::from_value(bogus_registration()).expect("a registration");
                app.call::<PasskeyFinish>(&client, &[], &request).await
            }
            "sessions" => app.call::<Sessions>(&client, &[], &()).await,
            "revoke_session" => {
                app.call::<RevokeSession>(&client, &["bm8tc3VjaC1zZXNzaW9u"], &())
                    .await
            }
            "revoke_other_sessions" => app.call::<RevokeOtherSessions>(&client, &[], &()).await,
            "account" => app.call::<Account>(&client, &[], &()).await,
            "dismiss_notices" => app.call::<DismissNotices>(&client, &[], &()).await,
            "set_trusted_networks" => {
                let request = TrustedNetworksRequest {
                    networks: Vec::new(),
                    auth_key,
                    totp_code: None,
                };
                app.call::<SetTrustedNetworks>(&client, &[], &request).await
            }
            "change_password" => {
                let request = PasswordChangeRequest {
                    current_auth_key: Base64Array(wrong_key),
                    totp_code: None,
                    new_kdf: TEST_KDF,
                    new_salt: Base64Array([9; 16]),
                    new_auth_key: Base64Array([9; 32]),
                    new_wrapped_identity: Base64(vec![9; 96]),
                };
                app.call::<ChangePassword>(&client, &[], &request).await
            }
            "delete_account" => {
                let request = DeleteAccountRequest {
                    auth_key: Base64Array(wrong_key),
                    totp_code: None,
                };
                app.call::<DeleteAccount>(&client, &[], &request).await
            }
            "get_client_state" => app.call::<GetClientState>(&client, &[], &()).await,
            "put_client_state" => {
                let request = PutClientStateRequest {
                    base_version: 0,
                    version: 1,
                    sealed: Base64(vec![1; 64]),
                };
                app.call::<PutClientState>(&client, &[], &request).await
            }
            "create_room" => {
                let new_room = create_room(
                    &user.username,
                    &user.secrets,
                    &RoomMetadata::named("own"),
                    now_ms(),
                    &mut OsRng,
                )
                .expect("a room");
                let request = CreateRoomRequest {
                    genesis: Base64(new_room.genesis.as_bytes().to_vec()),
                    key_envelope: new_room.creator_envelope,
                };
                app.call::<CreateRoom>(&client, &[], &request).await
            }
            "list_rooms" => app.call::<ListRooms>(&client, &[], &()).await,
            "get_log" => app.call::<GetLog>(&client, &[&room], &()).await,
            "append_log" => {
                // Another invite, signed by the caller on the room's current log (admins
                // and the owner may publish one); kept when accepted.
                let action = LogAction::Invite {
                    token_hash: invite_token_hash(caller.label().as_bytes()),
                    expires_at_ms: now_ms() + 3_600_000,
                    max_uses: 1,
                };
                let entry = self.cast.room.entry(user, action);
                let response = app.call_append(&client, &room, &entry).await;
                if response.status().is_success() {
                    self.cast.room.state.apply(&entry).expect("applies");
                }
                response
            }
            "get_envelopes" => app.call::<GetEnvelopes>(&client, &[&room], &()).await,
            "put_envelopes" => {
                let state = &self.cast.room.state;
                let envelope = KeyEnvelope::seal(
                    state,
                    state.current_epoch(),
                    &self.cast.room.key,
                    "alice",
                    &user.username,
                    &user.secrets,
                    &mut OsRng,
                )
                .expect("an envelope");
                let request = PutEnvelopesRequest {
                    envelopes: vec![envelope],
                };
                app.call::<PutEnvelopes>(&client, &[&room], &request).await
            }
            "request_key" => {
                let request = KeyRequestBody { epoch: 0 };
                app.call::<RequestKey>(&client, &[&room], &request).await
            }
            "list_messages" => app.call::<ListMessages>(&client, &[&room], &()).await,
            "post_message" => {
                let request = TestApp::sealed_text(&self.cast.room, user, 1, "hello");
                app.call::<PostMessage>(&client, &[&room], &request).await
            }
            "request_to_join" => {
                let request = common::api::JoinRequestBody {
                    token: Base64(TOKEN.to_vec()),
                };
                app.call::<RequestToJoin>(&client, &[&room], &request).await
            }
            "list_join_requests" => app.call::<ListJoinRequests>(&client, &[&room], &()).await,
            "refuse_join_request" => {
                // dave waits since the cast was made, eve since her row above.
                let requester = if caller == Caller::Owner {
                    "eve"
                } else {
                    "dave"
                };
                app.call::<RefuseJoinRequest>(&client, &[&room, requester], &())
                    .await
            }
            "announce_attachment" => {
                let request = NewAttachmentRequest {
                    // One id per caller: 1 to 8.
                    id: Base64Array([caller as u8 + 1; 16]),
                    size: ATTACHMENT_SIZE,
                    chunk_size: 16_384,
                };
                app.call::<AnnounceAttachment>(&client, &[&room], &request)
                    .await
            }
            "attachment_status" => {
                app.call::<AttachmentStatusOf>(&client, &[&room, &attachment], &())
                    .await
            }
            "upload_chunk" => {
                // The one chunk's ciphertext: the plaintext and a 16-byte tag.
                let body = vec![0u8; usize::try_from(ATTACHMENT_SIZE).unwrap_or(0) + 16];
                app.request::<UploadChunk>(
                    &client,
                    &UploadChunk::INFO.render_path(&[&room, &attachment, "0"]),
                    &Vec::new(),
                )
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body)
                .send()
                .await
                .expect("request is sent")
            }
            "download_attachment" => {
                app.call::<DownloadAttachment>(&client, &[&room, &attachment], &())
                    .await
            }
            "connect" => app.call::<Connect>(&client, &[], &()).await,
            "logout" => app.call::<Logout>(&client, &[], &()).await,
            other => panic!("no request for endpoint {other}: add one to this test"),
        }
    }
}

impl TestApp {
    /// `POST /api/rooms/{room}/log` with `entry`.
    async fn call_append(
        &self,
        client: &Client,
        room: &str,
        entry: &common::membership::SignedLogEntry,
    ) -> Response {
        let request = common::api::AppendLogRequest {
            entry: Base64(entry.as_bytes().to_vec()),
            envelopes: Vec::new(),
        };
        self.call::<AppendLog>(client, &[room], &request).await
    }
}

/// The cell of an answer: the status, and for an error its code. Also returns whether an
/// error's code is one the endpoint lists.
async fn cell(response: Response, id: &str) -> (String, bool) {
    let status = response.status();
    if status.is_success() || status == StatusCode::SWITCHING_PROTOCOLS {
        return (status.as_u16().to_string(), true);
    }
    let text = response.text().await.unwrap_or_default();
    let Ok(body) = serde_json::from_str::<ErrorBody>(&text) else {
        return (
            format!("{} (not an error body: {text})", status.as_u16()),
            false,
        );
    };
    let listed = ENDPOINTS
        .iter()
        .find(|endpoint| endpoint.id == id)
        .is_some_and(|endpoint| endpoint.errors().contains(&body.code));
    (format!("{} {}", status.as_u16(), body.code), listed)
}

#[tokio::test]
async fn every_endpoint_answers_every_role_as_the_table_says() {
    let defined: BTreeSet<&str> = ENDPOINTS.iter().map(|endpoint| endpoint.id).collect();
    let rows: BTreeSet<&str> = TABLE.iter().map(|(id, _)| *id).collect();
    assert_eq!(TABLE.len(), rows.len(), "an endpoint has two rows");
    let missing: Vec<_> = defined.difference(&rows).collect();
    let unknown: Vec<_> = rows.difference(&defined).collect();
    assert!(missing.is_empty(), "endpoints without a row: {missing:?}");
    assert!(unknown.is_empty(), "rows of no endpoint: {unknown:?}");

    let mut fixture = Fixture::new().await;
    let mut printed = format!("{:<22}", "endpoint");
    for caller in CALLERS {
        printed.push_str(&format!(" | {:<20}", caller.label()));
    }
    let mut differences = Vec::new();
    for (id, expected) in TABLE {
        printed.push_str(&format!("\n{id:<22}"));
        for (caller, expected) in CALLERS.iter().zip(expected) {
            let response = fixture.call(id, *caller).await;
            let (answer, listed) = cell(response, id).await;
            let mark = if answer == *expected && listed {
                " "
            } else {
                "!"
            };
            printed.push_str(&format!(" |{mark}{answer:<20}"));
            if answer != *expected {
                differences.push(format!(
                    "{id} as {}: expected {expected}, got {answer}",
                    caller.label()
                ));
            } else if !listed {
                differences.push(format!(
                    "{id} as {}: {answer} is not among the endpoint's listed errors",
                    caller.label()
                ));
            }
        }
    }
    println!(
        "authorization matrix: {} endpoints x {} callers = {} cells\n{printed}",
        TABLE.len(),
        CALLERS.len(),
        TABLE.len() * CALLERS.len()
    );
    assert!(
        differences.is_empty(),
        "cells that differ from the table:\n{}",
        differences.join("\n")
    );
}
