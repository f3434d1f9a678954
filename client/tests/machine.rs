//! The whole client core ([`Machine`]) of several accounts, driven against an in-memory
//! server that behaves as the real one does (it checks and applies log entries, refuses
//! messages at an old epoch or while a rotation is pending, pushes events to members), and
//! that a test can make lie: withhold a message, roll a log back, answer 409. The harness is
//! the driver: it does what each [`Effect`] asks and feeds back the answers. Natively and in
//! headless Chromium.

use std::collections::{BTreeMap, VecDeque};

use client::{
    Account, AppendOutcome, ClientState, Command, Effect, Input, Machine, PostOutcome,
    ShownMessage, SyncAnswers, Ticket, Timer, TrustWarning,
};
use common::api::{ServerEvent, StoredMessage};
use common::identity::{IdentitySecrets, PublicIdentity};
use common::membership::{LogAction, Role, RoomId, RoomPolicy, RoomState, SignedLogEntry};
use common::room_key::{create_room, KeyEnvelope, RoomMetadata};
use common::wire::Base64;
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// One room as the server keeps it.
struct ServerRoom {
    log: Vec<Vec<u8>>,
    state: RoomState,
    envelopes: Vec<KeyEnvelope>,
    messages: Vec<StoredMessage>,
}

/// A client: its machine and what the effects showed.
struct Client {
    machine: Machine,
    secrets: IdentitySecrets,
    identity: PublicIdentity,
    finished: BTreeMap<Ticket, Result<(), String>>,
    warnings: Vec<TrustWarning>,
    key_changed: Vec<String>,
    errors: Vec<String>,
    timers: Vec<Timer>,
    /// Whether the client is connected: events for it are dropped otherwise.
    online: bool,
    /// The live messages of others the machine announced ([`Effect::NewMessage`]).
    arrived: Vec<(RoomId, i64, String)>,
}

/// The server, the clients, and the lies the server is told to tell.
struct World {
    rooms: BTreeMap<RoomId, ServerRoom>,
    clients: BTreeMap<String, Client>,
    inbox: VecDeque<(String, Input)>,
    next_id: i64,
    next_ticket: Ticket,
    now_ms: u64,
    /// Message ids never delivered to, nor served to, the named user.
    withheld: Vec<(String, i64)>,
    /// Answer the next appends of the named user with 409 this many times.
    conflicts: BTreeMap<String, u32>,
    /// Serve this many log entries at most to the named user.
    truncated_log: Option<(String, usize)>,
    /// Serve history in pages of this many messages (a sync gets the newest page).
    page_size: Option<usize>,
}

impl World {
    fn new(names: &[&str]) -> Self {
        let mut clients = BTreeMap::new();
        for (index, name) in names.iter().enumerate() {
            let secrets = IdentitySecrets::generate(&mut OsRng);
            let identity = secrets.public_identity(name);
            let account = Account {
                username: (*name).to_owned(),
                secrets: secrets.clone(),
                device_id: [u8::try_from(index).expect("few clients") + 1; 16],
            };
            clients.insert(
                (*name).to_owned(),
                Client {
                    machine: Machine::new(account, ClientState::default()),
                    secrets,
                    identity,
                    finished: BTreeMap::new(),
                    warnings: Vec::new(),
                    key_changed: Vec::new(),
                    errors: Vec::new(),
                    timers: Vec::new(),
                    online: true,
                    arrived: Vec::new(),
                },
            );
        }
        Self {
            rooms: BTreeMap::new(),
            clients,
            inbox: VecDeque::new(),
            next_id: 1,
            next_ticket: 1,
            now_ms: 1_700_000_000_000,
            withheld: Vec::new(),
            conflicts: BTreeMap::new(),
            truncated_log: None,
            page_size: None,
        }
    }

    fn client(&self, name: &str) -> &Client {
        &self.clients[name]
    }

    /// `creator` creates a room named `name` (its server side and the machine's input).
    fn create(&mut self, creator: &str, name: &str) -> RoomId {
        let secrets = self.secrets_of(creator);
        let created = create_room(
            creator,
            &secrets,
            &RoomMetadata::named(name),
            self.now_ms,
            &mut OsRng,
        )
        .expect("room");
        let room_id = created.state.room_id();
        self.rooms.insert(
            room_id,
            ServerRoom {
                log: vec![created.genesis.as_bytes().to_vec()],
                state: created.state.clone(),
                envelopes: vec![created.creator_envelope.clone()],
                messages: Vec::new(),
            },
        );
        self.input(
            creator,
            Input::Created {
                room_id,
                state: created.state,
                key: created.key,
                metadata: RoomMetadata::named(name),
            },
        );
        room_id
    }

    /// A copy of a client's secrets (for the harness's own signing).
    fn secrets_of(&self, name: &str) -> IdentitySecrets {
        self.clients[name].secrets.clone()
    }

    /// The user asks for `command` in `room_id`; returns the ticket.
    fn command(&mut self, name: &str, room_id: RoomId, command: Command) -> Ticket {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.input(
            name,
            Input::Command {
                ticket,
                room_id,
                command,
            },
        );
        ticket
    }

    fn outcome(&self, name: &str, ticket: Ticket) -> Result<(), String> {
        self.clients[name]
            .finished
            .get(&ticket)
            .cloned()
            .unwrap_or_else(|| Err("not finished".into()))
    }

    /// Hands `input` to `name`'s machine and runs everything that follows until quiet.
    fn input(&mut self, name: &str, input: Input) {
        self.inbox.push_back((name.to_owned(), input));
        while let Some((name, input)) = self.inbox.pop_front() {
            let effects = {
                let client = self.clients.get_mut(&name).expect("client");
                client.machine.handle(input, self.now_ms, &mut OsRng)
            };
            for effect in effects {
                self.effect(&name, effect);
            }
        }
    }

    /// Fires every timer `name`'s machine set.
    fn fire_timers(&mut self, name: &str) {
        let timers = std::mem::take(&mut self.clients.get_mut(name).expect("client").timers);
        for timer in timers {
            self.input(name, Input::Timer(timer));
        }
    }

    fn push_event(&mut self, name: &str, event: ServerEvent) {
        if self.clients.get(name).is_some_and(|client| client.online) {
            self.inbox.push_back((name.to_owned(), Input::Event(event)));
        }
    }

    fn members_of(&self, room_id: &RoomId) -> Vec<String> {
        self.rooms[room_id]
            .state
            .members()
            .keys()
            .cloned()
            .collect()
    }

    fn effect(&mut self, name: &str, effect: Effect) {
        match effect {
            Effect::Sync(room_id) => {
                let answers = self.answers(name, room_id);
                self.inbox
                    .push_back((name.to_owned(), Input::Synced { room_id, answers }));
            }
            Effect::Append { room_id, request } => {
                let outcome = self.append(name, room_id, &request.entry.0, request.envelopes);
                self.inbox
                    .push_back((name.to_owned(), Input::Appended { room_id, outcome }));
            }
            Effect::PostMessage { room_id, request } => {
                let room = self.rooms.get_mut(&room_id).expect("room");
                let outcome = if room.state.member(name).is_none() {
                    PostOutcome::Refused("not a member".into())
                } else if room.state.rotation_pending() {
                    PostOutcome::Refused("key rotation pending".into())
                } else if request.epoch != room.state.current_epoch() {
                    PostOutcome::Refused("stale epoch".into())
                } else {
                    let message = StoredMessage {
                        id: self.next_id,
                        room_id,
                        epoch: request.epoch,
                        sender: name.to_owned(),
                        received_at_ms: 0,
                        nonce: request.nonce,
                        ciphertext: request.ciphertext,
                    };
                    self.next_id += 1;
                    room.messages.push(message.clone());
                    for member in self.members_of(&room_id) {
                        if !self.withheld.contains(&(member.clone(), message.id)) {
                            self.push_event(
                                &member,
                                ServerEvent::Message {
                                    message: message.clone(),
                                },
                            );
                        }
                    }
                    PostOutcome::Stored(message)
                };
                self.inbox
                    .push_back((name.to_owned(), Input::Posted { room_id, outcome }));
            }
            Effect::RequestKey { room_id, request } => {
                for member in self.members_of(&room_id) {
                    if member != name {
                        self.push_event(
                            &member,
                            ServerEvent::KeyRequested {
                                room_id,
                                username: name.to_owned(),
                                epoch: request.epoch,
                            },
                        );
                    }
                }
            }
            Effect::HandOut { room_id, request } => {
                self.store_envelopes(room_id, request.envelopes)
            }
            Effect::Wait { timer, .. } => self
                .clients
                .get_mut(name)
                .expect("client")
                .timers
                .push(timer),
            Effect::Warn(warnings) => self
                .clients
                .get_mut(name)
                .expect("client")
                .warnings
                .extend(warnings),
            Effect::KeyChanged { username, .. } => self
                .clients
                .get_mut(name)
                .expect("client")
                .key_changed
                .push(username),
            Effect::Finished { ticket, result } => {
                self.clients
                    .get_mut(name)
                    .expect("client")
                    .finished
                    .insert(ticket, result);
            }
            Effect::Error(error) => self
                .clients
                .get_mut(name)
                .expect("client")
                .errors
                .push(error),
            Effect::NewMessage {
                room_id,
                message_id,
                sender,
            } => self
                .clients
                .get_mut(name)
                .expect("client")
                .arrived
                .push((room_id, message_id, sender)),
            Effect::LoadJoinRequests(_)
            | Effect::RoomChanged(_)
            | Effect::RoomDeleted(_)
            | Effect::SaveState => {}
        }
    }

    fn answers(&self, name: &str, room_id: RoomId) -> SyncAnswers {
        let room = &self.rooms[&room_id];
        let mut log = room.log.clone();
        if let Some((user, length)) = &self.truncated_log {
            if user == name {
                log.truncate(*length);
            }
        }
        let (history, has_more) = self.page(name, room_id, i64::MAX);
        SyncAnswers {
            history,
            has_more,
            log,
            envelopes: room
                .envelopes
                .iter()
                .filter(|envelope| envelope.recipient == name)
                .cloned()
                .collect(),
        }
    }

    /// The newest page (of `page_size`, or everything) of the messages below `before` that
    /// `name` is served, ascending, and whether older ones exist.
    fn page(&self, name: &str, room_id: RoomId, before: i64) -> (Vec<StoredMessage>, bool) {
        let served: Vec<StoredMessage> = self.rooms[&room_id]
            .messages
            .iter()
            .filter(|message| message.id < before)
            .filter(|message| !self.withheld.contains(&(name.to_owned(), message.id)))
            .cloned()
            .collect();
        let size = self.page_size.unwrap_or(usize::MAX);
        let start = served.len().saturating_sub(size);
        (served[start..].to_vec(), start > 0)
    }

    /// `name` scrolls back to the start of the room's history, a page at a time; returns
    /// how many pages it loaded.
    fn scroll_back(&mut self, name: &str, room_id: RoomId) -> usize {
        let mut pages = 0;
        while let Some(before) = self.client(name).machine.older_page_before(&room_id) {
            let (messages, has_more) = self.page(name, room_id, before);
            self.input(
                name,
                Input::OlderPage {
                    room_id,
                    messages,
                    has_more,
                },
            );
            pages += 1;
            assert!(pages < 100, "scrollback never ends");
        }
        pages
    }

    fn append(
        &mut self,
        name: &str,
        room_id: RoomId,
        bytes: &[u8],
        envelopes: Vec<KeyEnvelope>,
    ) -> AppendOutcome {
        if let Some(left) = self.conflicts.get_mut(name).filter(|left| **left > 0) {
            *left -= 1;
            return AppendOutcome::Conflict("log moved on".into());
        }
        let room = self.rooms.get_mut(&room_id).expect("room");
        let Ok(signed) = SignedLogEntry::from_bytes(bytes) else {
            return AppendOutcome::Failed("malformed entry".into());
        };
        if signed.entry().author != name {
            return AppendOutcome::Failed("not your entry".into());
        }
        if signed.entry().seq != room.state.length() {
            return AppendOutcome::Conflict("log moved on".into());
        }
        let before: Vec<String> = room.state.members().keys().cloned().collect();
        if let Err(error) = room.state.apply(&signed) {
            return AppendOutcome::Failed(error.to_string());
        }
        room.log.push(bytes.to_vec());
        let seq = room.state.length() - 1;
        let mut told = before;
        for member in room.state.members().keys() {
            if !told.contains(member) {
                told.push(member.clone());
            }
        }
        for member in told {
            self.push_event(
                &member,
                ServerEvent::LogEntry {
                    room_id,
                    seq,
                    entry: Base64(bytes.to_vec()),
                },
            );
        }
        self.store_envelopes(room_id, envelopes);
        AppendOutcome::Stored
    }

    fn store_envelopes(&mut self, room_id: RoomId, envelopes: Vec<KeyEnvelope>) {
        for envelope in envelopes {
            let recipient = envelope.recipient.clone();
            self.rooms
                .get_mut(&room_id)
                .expect("room")
                .envelopes
                .push(envelope.clone());
            self.push_event(&recipient, ServerEvent::KeyEnvelope { envelope });
        }
    }

    /// The texts `name` sees in the room, verified ones as `sender: text`, the others as
    /// `! reason`.
    fn shown(&self, name: &str, room_id: &RoomId) -> Vec<String> {
        self.client(name)
            .machine
            .room(room_id)
            .map(|room| {
                room.messages
                    .iter()
                    .map(|shown| match shown {
                        ShownMessage::Verified { sender, text, .. } => format!("{sender}: {text}"),
                        ShownMessage::Attachment {
                            sender, attachment, ..
                        } => format!("{sender}: [{}]", attachment.name),
                        ShownMessage::Warning { reason, .. } => format!("! {reason}"),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn epoch(&self, room_id: &RoomId) -> u64 {
        self.rooms[room_id].state.current_epoch()
    }
}

/// alice's room "ops" with bob added by alice's machine (an add that starts epoch 1, the
/// room's policy being "since joining").
fn room_with_bob(world: &mut World) -> RoomId {
    let room_id = world.create("alice", "ops");
    let bob = world.client("bob").identity.clone();
    let ticket = world.command(
        "alice",
        room_id,
        Command::Add {
            identity: bob,
            role: Role::Member,
        },
    );
    assert_eq!(world.outcome("alice", ticket), Ok(()));
    room_id
}

/// The room of [`room_with_bob`] with carol added by alice; then alice goes offline and
/// carol leaves, so a rotation is pending that bob's client must complete.
fn carol_left_while_alice_is_offline() -> (World, RoomId) {
    let mut world = World::new(&["alice", "bob", "carol"]);
    let room_id = room_with_bob(&mut world);
    let carol = world.client("carol").identity.clone();
    let added = world.command(
        "alice",
        room_id,
        Command::Add {
            identity: carol,
            role: Role::Member,
        },
    );
    assert_eq!(world.outcome("alice", added), Ok(()));
    world.clients.get_mut("alice").expect("alice").online = false;
    let left = world.command("carol", room_id, Command::Append(LogAction::Leave));
    assert_eq!(world.outcome("carol", left), Ok(()));
    (world, room_id)
}

#[test]
fn an_added_member_syncs_the_room_and_both_read_each_other() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    assert_eq!(world.epoch(&room_id), 1, "the add started epoch 1");
    // bob's machine learnt of the room from the log event, synced it and holds the key
    // stored with the add.
    let bobs_room = world.client("bob").machine.room(&room_id).expect("synced");
    assert!(bobs_room.current_key().is_some());
    assert_eq!(bobs_room.display_name("bob"), "ops");

    let first = world.command("alice", room_id, Command::Send("hello bob".into()));
    let second = world.command("bob", room_id, Command::Send("hi alice".into()));
    assert_eq!(world.outcome("alice", first), Ok(()));
    assert_eq!(world.outcome("bob", second), Ok(()));
    let expected = vec!["alice: hello bob".to_owned(), "bob: hi alice".to_owned()];
    assert_eq!(
        world.shown("alice", &room_id),
        expected,
        "the echo is shown once"
    );
    assert_eq!(world.shown("bob", &room_id), expected);
    assert!(world.client("bob").warnings.is_empty());
    // Writing pinned the other member.
    assert!(world
        .client("bob")
        .machine
        .state()
        .pins
        .get("alice")
        .is_some());
}

#[test]
fn edits_and_deletions_go_only_to_ones_own_loaded_messages_and_reach_both() {
    use client::ItemContent;
    use common::message::MessageBody;
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    let sent = world.command("bob", room_id, Command::Send("bob's words".into()));
    assert_eq!(world.outcome("bob", sent), Ok(()));
    let hash = world
        .client("alice")
        .machine
        .room(&room_id)
        .and_then(|room| room.messages.last()?.hash())
        .expect("alice shows bob's message");

    let mut refused = |body: MessageBody| {
        let ticket = world.command("alice", room_id, Command::Send(body));
        world.outcome("alice", ticket).expect_err("refused")
    };
    let edit = refused(MessageBody::Edit {
        target: hash,
        text: "alice's words".into(),
    });
    assert!(edit.contains("only the sender"), "{edit}");
    let delete = refused(MessageBody::Delete { target: hash });
    assert!(delete.contains("only the sender"), "{delete}");
    let unknown = refused(MessageBody::Reaction {
        target: [9; 32],
        reaction: "👍".into(),
        added: true,
    });
    assert!(unknown.contains("not loaded"), "{unknown}");

    for (who, body) in [
        (
            "alice",
            MessageBody::Reaction {
                target: hash,
                reaction: "👍".into(),
                added: true,
            },
        ),
        (
            "alice",
            MessageBody::Reply {
                target: hash,
                text: "agreed".into(),
            },
        ),
        (
            "bob",
            MessageBody::Edit {
                target: hash,
                text: "bob's better words".into(),
            },
        ),
    ] {
        let ticket = world.command(who, room_id, Command::Send(body));
        assert_eq!(world.outcome(who, ticket), Ok(()));
    }
    // Only messages of others are announced, and not edits or reactions.
    let announced: Vec<(i64, &str)> = world
        .client("alice")
        .arrived
        .iter()
        .map(|(_, id, sender)| (*id, sender.as_str()))
        .collect();
    let bobs_first = world.rooms[&room_id].messages[0].id;
    assert_eq!(announced, [(bobs_first, "bob")]);
    let bob_announced: Vec<&str> = world
        .client("bob")
        .arrived
        .iter()
        .map(|(_, _, sender)| sender.as_str())
        .collect();
    assert_eq!(bob_announced, ["alice"], "alice's reply only");
    let room = world.client("bob").machine.room(&room_id).expect("room");
    assert_eq!(room.unread("bob", None).count, 1, "alice's reply");
    assert_eq!(room.unread("bob", room.newest_id()).count, 0);
    assert_eq!(
        room.unread("alice", None).count,
        1,
        "bob's message, seen as alice"
    );
    for who in ["alice", "bob"] {
        let room = world.client(who).machine.room(&room_id).expect("room");
        let items = client::timeline(room);
        assert_eq!(items.len(), 2, "{who}: {items:?}");
        assert_eq!(
            items[0].content,
            ItemContent::Text("bob's better words".into()),
            "{who}"
        );
        assert!(items[0].edited);
        assert_eq!(items[0].reactions[0].senders, ["alice"]);
        let quoted = items[1]
            .reply_to
            .as_ref()
            .and_then(|reply| reply.quoted.clone());
        assert_eq!(
            quoted.map(|quoted| quoted.excerpt).as_deref(),
            Some("bob's better words")
        );
    }
}

#[test]
fn scrolling_back_loads_older_pages_applies_waiting_edits_and_judges_gaps() {
    use common::message::MessageBody;
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    world.clients.get_mut("bob").expect("bob").online = false;
    for number in 1..=25 {
        let sent = world.command("alice", room_id, Command::Send(format!("m{number}").into()));
        assert_eq!(world.outcome("alice", sent), Ok(()));
    }
    // An edit of the third message lands on the newest page; the message itself is older.
    let third = world
        .client("alice")
        .machine
        .room(&room_id)
        .and_then(|room| room.messages.get(2)?.hash())
        .expect("alice shows m3");
    let edit = world.command(
        "alice",
        room_id,
        Command::Send(MessageBody::Edit {
            target: third,
            text: "m3, edited".into(),
        }),
    );
    assert_eq!(world.outcome("alice", edit), Ok(()));
    // The server withholds m5 from bob.
    let m5 = world.rooms[&room_id].messages[4].id;
    world.withheld.push(("bob".into(), m5));

    world.page_size = Some(10);
    world.clients.get_mut("bob").expect("bob").online = true;
    let answers = world.answers("bob", room_id);
    world.input("bob", Input::Synced { room_id, answers });
    let newest = world.shown("bob", &room_id);
    assert_eq!(newest.len(), 9, "the newest page: nine texts and the edit");
    assert_eq!(newest.last().map(String::as_str), Some("alice: m25"));
    assert!(world.client("bob").warnings.is_empty());
    let unread = |world: &World| {
        world
            .client("bob")
            .machine
            .room(&room_id)
            .expect("room")
            .unread("bob", None)
    };
    assert_eq!(
        unread(&world),
        client::Unread {
            count: 9,
            more: true
        },
        "at least the page loaded is unread"
    );

    let pages = world.scroll_back("bob", room_id);
    assert_eq!(
        unread(&world),
        client::Unread {
            count: 24,
            more: false
        }
    );
    assert_eq!(pages, 2, "24 served messages and an edit in pages of 10");
    let room = world.client("bob").machine.room(&room_id).expect("room");
    let texts: Vec<String> = client::timeline(room)
        .iter()
        .map(|item| match &item.content {
            client::ItemContent::Text(text) => text.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    let expected: Vec<String> = (1..=25)
        .filter(|number| *number != 5)
        .map(|number| match number {
            3 => "m3, edited".to_owned(),
            number => format!("m{number}"),
        })
        .collect();
    assert_eq!(texts, expected);
    assert_eq!(
        world.client("bob").machine.older_page_before(&room_id),
        None
    );
    // The gap the older page shows is reported once it is loaded.
    assert!(
        world.client("bob").warnings.iter().any(|warning| matches!(
            warning,
            TrustWarning::MessagesWithheld { sender, count: 1, .. } if sender == "alice"
        )),
        "{:?}",
        world.client("bob").warnings
    );
}

#[test]
fn an_admin_completes_the_rotation_a_leave_leaves_pending_at_once() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    let leave = world.command("bob", room_id, Command::Append(LogAction::Leave));
    assert_eq!(world.outcome("bob", leave), Ok(()));
    assert_eq!(
        world.epoch(&room_id),
        2,
        "alice's machine rotated on the leave event"
    );
    assert!(!world.rooms[&room_id].state.rotation_pending());
    let sent = world.command("alice", room_id, Command::Send("after bob".into()));
    assert_eq!(world.outcome("alice", sent), Ok(()));
    // bob holds no key to it and was told nothing under his old one.
    let bobs = world.client("bob").machine.room(&room_id).expect("room");
    assert!(bobs.removed);
    assert!(!bobs.keys.contains_key(&2));
}

#[test]
fn a_member_writing_while_a_rotation_is_pending_rotates_first_then_sends() {
    let mut world = World::new(&["alice", "bob", "carol"]);
    let room_id = room_with_bob(&mut world);
    let carol = world.client("carol").identity.clone();
    let added = world.command(
        "alice",
        room_id,
        Command::Add {
            identity: carol,
            role: Role::Member,
        },
    );
    assert_eq!(world.outcome("alice", added), Ok(()));
    // alice goes offline; carol leaves; bob's machine sets a timer to complete it.
    world.clients.get_mut("alice").expect("alice").online = false;
    let left = world.command("carol", room_id, Command::Append(LogAction::Leave));
    assert_eq!(world.outcome("carol", left), Ok(()));
    assert!(world.rooms[&room_id].state.rotation_pending());
    assert!(world.client("bob").timers.contains(&Timer::Rotate(room_id)));
    // bob writes before the timer: the rotation goes first, then the message.
    let epoch_before = world.epoch(&room_id);
    let sent = world.command("bob", room_id, Command::Send("still here".into()));
    assert_eq!(world.outcome("bob", sent), Ok(()));
    assert_eq!(world.epoch(&room_id), epoch_before + 1);
    assert_eq!(
        world.rooms[&room_id].messages.last().map(|m| m.epoch),
        Some(epoch_before + 1),
        "written under the new key"
    );
    // The timer finds the duty done and does nothing.
    let length = world.rooms[&room_id].state.length();
    world.fire_timers("bob");
    assert_eq!(world.rooms[&room_id].state.length(), length);
}

#[test]
fn a_rotation_refused_with_409_syncs_and_the_waiting_message_goes_out() {
    let (mut world, room_id) = carol_left_while_alice_is_offline();
    // bob's rotation is refused once (another member's came first, as far as bob knows).
    world.conflicts.insert("bob".into(), 1);
    let sent = world.command("bob", room_id, Command::Send("once rotated".into()));
    assert_eq!(world.outcome("bob", sent), Ok(()));
    assert!(world
        .shown("bob", &room_id)
        .contains(&"bob: once rotated".to_owned()));
}

#[test]
fn a_server_that_keeps_refusing_the_rotation_gets_no_message_and_the_user_is_told() {
    let (mut world, room_id) = carol_left_while_alice_is_offline();
    world.conflicts.insert("bob".into(), 100);
    let sent = world.command("bob", room_id, Command::Send("never".into()));
    let outcome = world.outcome("bob", sent);
    assert!(
        outcome
            .as_ref()
            .is_err_and(|reason| reason.contains("keeps refusing")),
        "{outcome:?}"
    );
    assert!(world.rooms[&room_id].messages.is_empty());
}

#[test]
fn a_withheld_message_is_reported_with_its_count() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    world.command("alice", room_id, Command::Send("one".into()));
    let withheld_id = world.next_id;
    world.withheld.push(("bob".into(), withheld_id));
    world.command("alice", room_id, Command::Send("two".into()));
    world.command("alice", room_id, Command::Send("three".into()));
    assert_eq!(
        world.shown("bob", &room_id),
        vec!["alice: one".to_owned(), "alice: three".to_owned()]
    );
    let withheld: Vec<&TrustWarning> = world
        .client("bob")
        .warnings
        .iter()
        .filter(|warning| matches!(warning, TrustWarning::MessagesWithheld { .. }))
        .collect();
    assert_eq!(withheld.len(), 1, "{:?}", world.client("bob").warnings);
    assert!(
        withheld[0].to_string().contains("1 of alice's messages"),
        "{}",
        withheld[0]
    );
}

#[test]
fn a_log_rolled_back_after_a_removal_is_refused_and_nothing_is_written_under_it() {
    let mut world = World::new(&["alice", "bob", "carol"]);
    let room_id = room_with_bob(&mut world);
    let carol = world.client("carol").identity.clone();
    world.command(
        "alice",
        room_id,
        Command::Add {
            identity: carol,
            role: Role::Member,
        },
    );
    let before_removal = world.rooms[&room_id].log.len();
    let removed = world.command(
        "alice",
        room_id,
        Command::Remove {
            username: "carol".into(),
            ban: false,
        },
    );
    assert_eq!(world.outcome("alice", removed), Ok(()));
    // bob accepted the removal; now the server serves him the log from before it.
    world.truncated_log = Some(("bob".into(), before_removal));
    world.input(
        "bob",
        Input::Synced {
            room_id,
            answers: world.answers("bob", room_id),
        },
    );
    assert!(
        world
            .client("bob")
            .warnings
            .iter()
            .any(|warning| matches!(warning, TrustWarning::LogRolledBack { .. })),
        "{:?}",
        world.client("bob").warnings
    );
    let sent = world.command("bob", room_id, Command::Send("to whom?".into()));
    let outcome = world.outcome("bob", sent);
    assert!(
        outcome
            .as_ref()
            .is_err_and(|reason| reason.contains("not available")),
        "{outcome:?}"
    );
}

#[test]
fn a_missing_key_is_asked_for_after_the_delay_and_handed_over_by_a_member() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = world.create("alice", "ops");
    // A full-history room: the add is a plain entry, and alice's envelope for bob is lost.
    world.command(
        "alice",
        room_id,
        Command::Append(LogAction::SetPolicy {
            policy: RoomPolicy {
                history: common::membership::HistoryPolicy::FullHistory,
                ..RoomPolicy::default()
            },
        }),
    );
    world.command("alice", room_id, Command::Send("before bob".into()));
    world.clients.get_mut("bob").expect("bob").online = false;
    let bob = world.client("bob").identity.clone();
    world.command(
        "alice",
        room_id,
        Command::Add {
            identity: bob,
            role: Role::Member,
        },
    );
    world
        .rooms
        .get_mut(&room_id)
        .expect("room")
        .envelopes
        .retain(|envelope| envelope.recipient != "bob");
    world.clients.get_mut("bob").expect("bob").online = true;
    world.input(
        "bob",
        Input::Synced {
            room_id,
            answers: world.answers("bob", room_id),
        },
    );
    assert!(world.shown("bob", &room_id).is_empty(), "no key yet");
    assert_eq!(
        world.client("bob").timers,
        vec![Timer::RequestKey(room_id)],
        "asked for only after the delay"
    );
    world.fire_timers("bob");
    assert_eq!(
        world.shown("bob", &room_id),
        vec!["alice: before bob".to_owned()],
        "alice's machine handed over every key the policy allows"
    );
}

#[test]
fn a_room_whose_member_keys_differ_from_the_pin_stops_sending() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    world.command("bob", room_id, Command::Send("pins alice".into()));
    // The server makes a room in which "alice" has other keys and adds bob to it.
    let impostor = IdentitySecrets::generate(&mut OsRng);
    let fake = create_room(
        "alice",
        &impostor,
        &RoomMetadata::named("ops"),
        1,
        &mut OsRng,
    )
    .expect("room");
    let fake_id = fake.state.room_id();
    let mut state = fake.state.clone();
    let bob_keys = world.client("bob").identity.keys().to_owned();
    let add = state
        .next_entry(
            "alice",
            2,
            LogAction::AddMember {
                username: "bob".into(),
                keys: bob_keys,
                role: Role::Member,
            },
        )
        .sign(&impostor);
    state.apply(&add).expect("add");
    world.rooms.insert(
        fake_id,
        ServerRoom {
            log: vec![fake.genesis.as_bytes().to_vec(), add.as_bytes().to_vec()],
            state,
            envelopes: Vec::new(),
            messages: Vec::new(),
        },
    );
    world.input(
        "bob",
        Input::Event(ServerEvent::LogEntry {
            room_id: fake_id,
            seq: 1,
            entry: Base64(add.as_bytes().to_vec()),
        }),
    );
    assert_eq!(world.client("bob").key_changed, vec!["alice".to_owned()]);
    let sent = world.command("bob", fake_id, Command::Send("to the impostor".into()));
    assert!(world.outcome("bob", sent).is_err());
    assert!(world.rooms[&fake_id].messages.is_empty());
}

#[test]
fn commands_on_unknown_rooms_and_without_a_key_fail_with_a_reason() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    let unknown = RoomId::from_hex(&"ab".repeat(32)).expect("id");
    let ticket = world.command("alice", unknown, Command::Send("x".into()));
    assert_eq!(world.outcome("alice", ticket), Err("unknown room".into()));
    // bob's key is taken away before he writes.
    world
        .clients
        .get_mut("bob")
        .expect("bob")
        .machine
        .room_mut(&room_id)
        .expect("room")
        .keys
        .clear();
    let ticket = world.command("bob", room_id, Command::Send("x".into()));
    assert!(world
        .outcome("bob", ticket)
        .is_err_and(|reason| reason.contains("key")));
    // A member may not remove anyone: the log refuses it before anything is sent.
    let ticket = world.command(
        "bob",
        room_id,
        Command::Remove {
            username: "alice".into(),
            ban: false,
        },
    );
    assert!(world.outcome("bob", ticket).is_err());
    assert_eq!(world.epoch(&room_id), 1);
}

#[test]
fn a_signed_delete_forgets_the_room_and_the_servers_word_alone_does_not() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    world.input("bob", Input::Event(ServerEvent::RoomDeleted { room_id }));
    assert!(world
        .client("bob")
        .warnings
        .iter()
        .any(|warning| matches!(warning, TrustWarning::ServerSaysRoomDeleted { .. })));
    assert!(world.client("bob").machine.room(&room_id).is_some());
    let deleted = world.command("alice", room_id, Command::Append(LogAction::DeleteRoom));
    assert_eq!(world.outcome("alice", deleted), Ok(()));
    assert!(world.client("alice").machine.room(&room_id).is_none());
}

#[test]
fn clearing_history_empties_the_room_for_its_author_and_the_members() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    world.command("alice", room_id, Command::Send("soon gone".into()));
    // The author's answer comes before its event: its own clearing empties the room.
    world.clients.get_mut("alice").expect("alice").online = false;
    let cleared = world.command("alice", room_id, Command::ClearHistory);
    assert_eq!(world.outcome("alice", cleared), Ok(()));
    assert!(world.shown("alice", &room_id).is_empty());
    assert!(world.shown("bob", &room_id).is_empty());
    assert_eq!(
        world.epoch(&room_id),
        2,
        "cleared in an entry that starts an epoch"
    );
    world.clients.get_mut("alice").expect("alice").online = true;
    let sent = world.command("bob", room_id, Command::Send("fresh start".into()));
    assert_eq!(world.outcome("bob", sent), Ok(()));
    assert_eq!(
        world.shown("alice", &room_id),
        vec!["bob: fresh start".to_owned()]
    );
    assert!(
        world.client("alice").warnings.is_empty(),
        "{:?}",
        world.client("alice").warnings
    );
}

#[test]
fn opening_a_room_pins_its_members_and_forgetting_it_ends_its_writes() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    assert!(
        world
            .client("bob")
            .machine
            .state()
            .pins
            .get("alice")
            .is_none(),
        "a sync pins nobody"
    );
    world.input("bob", Input::Opened(room_id));
    assert!(world
        .client("bob")
        .machine
        .state()
        .pins
        .get("alice")
        .is_some());
    let left = world.command("bob", room_id, Command::Append(LogAction::Leave));
    assert_eq!(world.outcome("bob", left), Ok(()));
    world.input("bob", Input::Forget(room_id));
    assert!(world.client("bob").machine.room(&room_id).is_none());
    let ticket = world.command("bob", room_id, Command::Send("gone".into()));
    assert_eq!(world.outcome("bob", ticket), Err("unknown room".into()));
}

#[test]
fn an_admin_whose_changes_the_server_keeps_refusing_is_told_and_the_client_stops_asking() {
    let mut world = World::new(&["alice", "bob", "carol"]);
    let room_id = room_with_bob(&mut world);
    let carol = world.client("carol").identity.clone();
    world.command(
        "alice",
        room_id,
        Command::Add {
            identity: carol,
            role: Role::Member,
        },
    );
    // Every append of alice's is refused: her rotation after bob's leave, and what she asks.
    world.conflicts.insert("alice".into(), u32::MAX);
    world.clients.get_mut("carol").expect("carol").online = false;
    world.command("bob", room_id, Command::Append(LogAction::Leave));
    let sent = world.command("alice", room_id, Command::Send("anyone?".into()));
    // Her client retries after its pause (the harness fires the timers it set).
    for _ in 0..10 {
        if world.client("alice").finished.contains_key(&sent) {
            break;
        }
        world.fire_timers("alice");
    }
    let outcome = world.outcome("alice", sent);
    assert!(
        outcome
            .as_ref()
            .is_err_and(|reason| reason.contains("keeps refusing")),
        "{outcome:?}"
    );
    let tries = |world: &World| u32::MAX - world.conflicts["alice"];
    assert!(tries(&world) <= 4, "{} appends", tries(&world));
    // The client rests until the log moves: timers firing now ask nothing more.
    let rested = tries(&world);
    for _ in 0..5 {
        world.fire_timers("alice");
    }
    assert_eq!(tries(&world), rested);
    assert!(world.rooms[&room_id].messages.is_empty());
}

#[test]
fn a_sync_that_crossed_an_event_is_asked_again_not_taken_for_a_rollback() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    let before = world.answers("bob", room_id);
    world.command(
        "alice",
        room_id,
        Command::Append(LogAction::SetRotationSchedule {
            schedule: common::membership::RotationSchedule::default(),
        }),
    );
    // bob's machine applied the new entry from its event; an answer fetched before it
    // arrives now.
    world.input(
        "bob",
        Input::Synced {
            room_id,
            answers: before,
        },
    );
    assert!(
        world.client("bob").warnings.is_empty(),
        "{:?}",
        world.client("bob").warnings
    );
    let bobs = world.client("bob").machine.room(&room_id).expect("room");
    assert_eq!(
        bobs.state.as_ref().map(RoomState::length).ok(),
        Some(world.rooms[&room_id].state.length())
    );
}

#[test]
fn a_command_not_sent_yet_can_be_cancelled_and_one_in_flight_cannot() {
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    let machine = &mut world.clients.get_mut("alice").expect("alice").machine;
    let send = |ticket, text: &str| Input::Command {
        ticket,
        room_id,
        command: Command::Send(text.into()),
    };
    let first = machine.handle(send(100, "in flight"), 1, &mut OsRng);
    assert!(first
        .iter()
        .any(|effect| matches!(effect, Effect::PostMessage { .. })));
    let second = machine.handle(send(101, "queued"), 1, &mut OsRng);
    assert!(second.is_empty(), "waits behind the first: {second:?}");
    let cancelled = machine.handle(Input::Cancel(101), 1, &mut OsRng);
    assert!(matches!(
        cancelled.as_slice(),
        [Effect::Finished {
            ticket: 101,
            result: Err(_)
        }]
    ));
    assert!(machine.handle(Input::Cancel(100), 1, &mut OsRng).is_empty());
    assert!(machine.is_writing(&room_id), "the first is still in flight");
}

#[test]
fn an_attachment_of_a_kind_the_room_forbids_is_a_warning_never_shown() {
    use common::attachment::{AttachmentCipher, AttachmentRef, MediaKind};
    use common::membership::{MEDIA_FILES, MEDIA_IMAGES};
    use common::message::{seal_message, MessageBody, MessageKind};
    let mut world = World::new(&["alice", "bob"]);
    let room_id = room_with_bob(&mut world);
    // The room allows images and plain files, no video.
    let policy = RoomPolicy {
        allowed_media: MEDIA_IMAGES | MEDIA_FILES,
        ..*world.rooms[&room_id].state.policy()
    };
    let set = world.command(
        "alice",
        room_id,
        Command::Append(LogAction::SetPolicy { policy }),
    );
    assert_eq!(world.outcome("alice", set), Ok(()));
    let video = AttachmentRef {
        cipher: AttachmentCipher::generate(1000, 16 * 1024, &mut OsRng).expect("layout"),
        ciphertext_sha256: [0; 32],
        kind: MediaKind::Video,
        mime: "video/mp4".into(),
        name: "clip.mp4".into(),
        dimensions: None,
        thumbnail: Vec::new(),
        thumbnail_mime: String::new(),
    };
    // alice's client refuses to send it...
    let refused = world.command(
        "alice",
        room_id,
        Command::Send(MessageBody::Attachment(Box::new(video.clone()))),
    );
    assert!(world
        .outcome("alice", refused)
        .is_err_and(|reason| reason.contains("does not allow")));
    // ...and a client that sends it anyway (the server cannot see the kind) is not shown.
    let alices = world.client("alice").machine.room(&room_id).expect("room");
    let (inner, key) = alices
        .prepare_message(
            "alice",
            [1; 16],
            MessageKind::Attachment,
            video.to_bytes(),
            5,
        )
        .expect("key held");
    let sealed = seal_message(&inner, &key, &world.secrets_of("alice"), &mut OsRng).expect("seals");
    let message = StoredMessage {
        id: world.next_id,
        room_id,
        epoch: inner.epoch,
        sender: "alice".into(),
        received_at_ms: 0,
        nonce: common::wire::Base64Array(sealed.nonce),
        ciphertext: Base64(sealed.ciphertext),
    };
    world.input("bob", Input::Event(ServerEvent::Message { message }));
    let shown = world.shown("bob", &room_id);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].starts_with("! an attachment of a kind this room does not allow (Video)"),
        "{shown:?}"
    );
}
