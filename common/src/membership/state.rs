//! The state a replayed log describes (members, epochs, bans, invites, policy, metadata), the
//! replay itself, and one method per action that checks the author's authority and applies it.

use std::collections::{BTreeMap, BTreeSet};

use crate::encoding::DecodeError;
use crate::identity::{self, validate_username, MemberKeys};
use crate::primitives::KEY_LEN;

use super::{
    LogAction, LogEntry, LogError, LogErrorKind, NewEpoch, Role, RoomId, RoomPolicy,
    RotationSchedule, SignedLogEntry,
};

/// A member as the log describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// Public keys recorded when the member was added (or created the room).
    pub keys: MemberKeys,
    /// Current role.
    pub role: Role,
    /// Sequence number of the entry that added the member.
    pub added_at_seq: u64,
    /// The epoch the member joined in: the one current when they were added, or the one
    /// their add entry started ([`LogAction::AddMemberAndRotate`]).
    pub joined_epoch: u64,
}

/// What is known of one epoch of the room key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRecord {
    /// The commitment to the epoch's room key.
    pub key_commitment: [u8; KEY_LEN],
    /// Everyone who was a member at some point during the epoch, with their keys: whose
    /// messages of this epoch a reader may accept.
    pub members: BTreeMap<String, MemberKeys>,
    /// When the epoch started: the signed time of the entry that started it, milliseconds
    /// since the Unix epoch by its author's clock (what scheduled rotation counts from).
    pub started_at_ms: u64,
    /// The position in the log of the entry that started the epoch (0 for epoch 0).
    pub started_at_seq: u64,
}

/// An invite published in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    /// When it stops working, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// How many join requests it admits.
    pub max_uses: u32,
    /// The admin who published it.
    pub created_by: String,
}

/// The state of a room after replaying its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    room_id: RoomId,
    members: BTreeMap<String, MemberRecord>,
    epochs: Vec<EpochRecord>,
    banned: BTreeSet<String>,
    policy: RoomPolicy,
    rotation_schedule: RotationSchedule,
    invites: BTreeMap<[u8; KEY_LEN], InviteRecord>,
    metadata_epoch: u64,
    encrypted_metadata: Vec<u8>,
    rotation_pending: bool,
    deleted: bool,
    entry_hashes: Vec<[u8; KEY_LEN]>,
    head_hash: [u8; KEY_LEN],
    length: u64,
}

/// Replays a whole log from genesis.
///
/// # Errors
/// [`LogError`] for the first entry that fails a check; nothing after it is considered.
pub fn replay(entries: &[SignedLogEntry]) -> Result<RoomState, LogError> {
    let (genesis, rest) = entries.split_first().ok_or(LogError {
        index: 0,
        kind: LogErrorKind::Empty,
    })?;
    let mut state = RoomState::from_genesis(genesis).map_err(|kind| LogError { index: 0, kind })?;
    for entry in rest {
        let index = state.length;
        state
            .apply(entry)
            .map_err(|kind| LogError { index, kind })?;
    }
    Ok(state)
}

/// Parses and replays a log given as wire bytes, one entry per element.
///
/// # Errors
/// As [`replay`], with [`LogErrorKind::Malformed`] for an entry that does not parse.
pub fn replay_bytes<B: AsRef<[u8]>>(entries: &[B]) -> Result<RoomState, LogError> {
    let parsed = entries
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            SignedLogEntry::from_bytes(bytes.as_ref()).map_err(|error| LogError {
                index: index as u64,
                kind: LogErrorKind::Malformed(error),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    replay(&parsed)
}

impl RoomState {
    /// Checks a genesis entry and starts the state from it.
    ///
    /// # Errors
    /// [`LogErrorKind`] for the failed check.
    pub fn from_genesis(genesis: &SignedLogEntry) -> Result<Self, LogErrorKind> {
        let entry = genesis.entry();
        let LogAction::Create {
            room_nonce,
            owner_keys,
            key_commitment,
            encrypted_metadata,
        } = &entry.action
        else {
            return Err(LogErrorKind::MisplacedCreate);
        };
        if entry.seq != 0 {
            return Err(LogErrorKind::SequenceGap {
                expected: 0,
                found: entry.seq,
            });
        }
        if entry.prev != [0u8; KEY_LEN] {
            return Err(LogErrorKind::PrevHashMismatch);
        }
        validate_username(&entry.author)
            .map_err(|_| LogErrorKind::Malformed(DecodeError::InvalidValue("username")))?;
        if RoomId::derive(&entry.author, owner_keys, room_nonce) != entry.room_id {
            return Err(LogErrorKind::RoomIdMismatch);
        }
        identity::verify_signature(
            &owner_keys.ed25519,
            genesis.entry_bytes(),
            &genesis.signature,
        )
        .map_err(|_| LogErrorKind::GenesisAuthorMismatch)?;
        let mut members = BTreeMap::new();
        members.insert(
            entry.author.clone(),
            MemberRecord {
                keys: *owner_keys,
                role: Role::Owner,
                added_at_seq: 0,
                joined_epoch: 0,
            },
        );
        Ok(Self {
            room_id: entry.room_id,
            members,
            epochs: vec![EpochRecord {
                key_commitment: *key_commitment,
                members: BTreeMap::from([(entry.author.clone(), *owner_keys)]),
                started_at_ms: entry.time_ms,
                started_at_seq: 0,
            }],
            banned: BTreeSet::new(),
            policy: RoomPolicy::default(),
            rotation_schedule: RotationSchedule::default(),
            invites: BTreeMap::new(),
            metadata_epoch: 0,
            encrypted_metadata: encrypted_metadata.clone(),
            rotation_pending: false,
            deleted: false,
            entry_hashes: vec![genesis.hash()],
            head_hash: genesis.hash(),
            length: 1,
        })
    }

    /// Checks one more entry against the state and applies it.
    ///
    /// On error the state is unchanged.
    ///
    /// # Errors
    /// [`LogErrorKind`] for the failed check.
    pub fn apply(&mut self, signed: &SignedLogEntry) -> Result<(), LogErrorKind> {
        let entry = signed.entry();
        if entry.room_id != self.room_id {
            return Err(LogErrorKind::RoomIdMismatch);
        }
        if entry.seq != self.length {
            return Err(LogErrorKind::SequenceGap {
                expected: self.length,
                found: entry.seq,
            });
        }
        if entry.prev != self.head_hash {
            return Err(LogErrorKind::PrevHashMismatch);
        }
        if self.deleted {
            return Err(LogErrorKind::RoomDeleted);
        }
        let author = self
            .members
            .get(&entry.author)
            .ok_or_else(|| LogErrorKind::AuthorNotMember(entry.author.clone()))?;
        identity::verify_signature(
            &author.keys.ed25519,
            signed.entry_bytes(),
            &signed.signature,
        )
        .map_err(|_| LogErrorKind::BadSignature(entry.author.clone()))?;
        let by = Authority {
            author: &entry.author,
            role: author.role,
            action: entry.action.name(),
        };
        let at = EntryPoint {
            seq: entry.seq,
            time_ms: entry.time_ms,
        };
        match &entry.action {
            LogAction::Create { .. } => return Err(LogErrorKind::MisplacedCreate),
            LogAction::AddMember {
                username,
                keys,
                role,
            } => self.add_member(&by, at.seq, username, keys, *role, None)?,
            LogAction::AddMemberAndRotate {
                username,
                keys,
                role,
                new_epoch,
            } => self.add_member(&by, at.seq, username, keys, *role, Some((new_epoch, at)))?,
            LogAction::RemoveMember { username } => self.remove_member(&by, username, None)?,
            LogAction::RemoveMemberAndRotate {
                username,
                new_epoch,
            } => self.remove_member(&by, username, Some((new_epoch, at)))?,
            LogAction::Ban { username } => self.ban(&by, username, None)?,
            LogAction::BanAndRotate {
                username,
                new_epoch,
            } => self.ban(&by, username, Some((new_epoch, at)))?,
            LogAction::SetRole { username, role } => self.set_role(&by, username, *role)?,
            LogAction::Rotate {
                epoch,
                key_commitment,
                encrypted_metadata,
            } => self.rotate(
                &by,
                &NewEpoch {
                    epoch: *epoch,
                    key_commitment: *key_commitment,
                    encrypted_metadata: encrypted_metadata.clone(),
                },
                at,
            )?,
            LogAction::SetPolicy { policy } => {
                by.require(Role::Admin)?;
                self.policy = *policy;
            }
            LogAction::SetRotationSchedule { schedule } => {
                by.require(Role::Admin)?;
                schedule.validate().map_err(LogErrorKind::InvalidSchedule)?;
                self.rotation_schedule = *schedule;
            }
            LogAction::Invite {
                token_hash,
                expires_at_ms,
                max_uses,
            } => self.invite(&by, token_hash, *expires_at_ms, *max_uses)?,
            LogAction::Leave => self.leave(&by)?,
            LogAction::SetMetadata { encrypted_metadata } => {
                by.require(Role::Admin)?;
                self.metadata_epoch = self.current_epoch();
                self.encrypted_metadata = encrypted_metadata.clone();
            }
            LogAction::ClearHistory => {
                by.require(Role::Admin)?;
                self.rotation_pending = true;
            }
            LogAction::ClearHistoryAndRotate { new_epoch } => {
                by.require(Role::Admin)?;
                self.check_new_epoch(new_epoch)?;
                self.start_epoch(new_epoch, at);
            }
            LogAction::DeleteRoom => {
                by.require(Role::Owner)?;
                self.deleted = true;
            }
        }
        self.head_hash = signed.hash();
        self.entry_hashes.push(self.head_hash);
        self.length += 1;
        Ok(())
    }

    /// The hash of entry `seq`, if the log has it.
    pub fn hash_at(&self, seq: u64) -> Option<[u8; KEY_LEN]> {
        usize::try_from(seq)
            .ok()
            .and_then(|index| self.entry_hashes.get(index))
            .copied()
    }

    /// Checks that this log extends one seen before, of `seen_length` entries ending in
    /// `seen_head`: a server cannot roll a client back or show it another history.
    ///
    /// # Errors
    /// [`LogErrorKind::Truncated`] or [`LogErrorKind::Forked`].
    pub fn check_extends(
        &self,
        seen_length: u64,
        seen_head: &[u8; KEY_LEN],
    ) -> Result<(), LogErrorKind> {
        if seen_length == 0 {
            return Ok(());
        }
        if self.length < seen_length {
            return Err(LogErrorKind::Truncated {
                seen: seen_length,
                served: self.length,
            });
        }
        if self.hash_at(seen_length - 1).as_ref() != Some(seen_head) {
            return Err(LogErrorKind::Forked(seen_length - 1));
        }
        Ok(())
    }

    /// `AddMember`: admins add members, the owner adds admins, nobody adds an owner; not a
    /// current member, not banned. The member joins the current epoch, or with `new_epoch`
    /// (`AddMemberAndRotate`) the epoch the entry starts, so they are no member of any
    /// earlier one.
    fn add_member(
        &mut self,
        by: &Authority<'_>,
        seq: u64,
        username: &str,
        keys: &MemberKeys,
        role: Role,
        new_epoch: Option<(&NewEpoch, EntryPoint)>,
    ) -> Result<(), LogErrorKind> {
        let allowed = match role {
            Role::Member => by.role >= Role::Admin,
            Role::Admin => by.role == Role::Owner,
            Role::Owner => false,
        };
        if !allowed {
            return Err(by.not_authorized());
        }
        if self.members.contains_key(username) {
            return Err(LogErrorKind::AlreadyMember(username.to_owned()));
        }
        if self.banned.contains(username) {
            return Err(LogErrorKind::Banned(username.to_owned()));
        }
        if let Some((new_epoch, _)) = new_epoch {
            self.check_new_epoch(new_epoch)?;
        }
        let joined_epoch = match new_epoch {
            Some((new_epoch, _)) => new_epoch.epoch,
            None => self.current_epoch(),
        };
        self.members.insert(
            username.to_owned(),
            MemberRecord {
                keys: *keys,
                role,
                added_at_seq: seq,
                joined_epoch,
            },
        );
        match new_epoch {
            Some((new_epoch, at)) => self.start_epoch(new_epoch, at),
            None => {
                if let Some(current) = self.epochs.last_mut() {
                    current.members.insert(username.to_owned(), *keys);
                }
            }
        }
        Ok(())
    }

    /// `RemoveMember`: an admin removes a member of lower role; a rotation is then pending,
    /// unless the entry starts the next epoch itself (`RemoveMemberAndRotate`).
    fn remove_member(
        &mut self,
        by: &Authority<'_>,
        username: &str,
        new_epoch: Option<(&NewEpoch, EntryPoint)>,
    ) -> Result<(), LogErrorKind> {
        by.require(Role::Admin)?;
        self.check_can_remove(by, username)?;
        if let Some((new_epoch, _)) = new_epoch {
            self.check_new_epoch(new_epoch)?;
        }
        self.members.remove(username);
        self.rotation_pending = true;
        if let Some((new_epoch, at)) = new_epoch {
            self.start_epoch(new_epoch, at);
        }
        Ok(())
    }

    /// `Ban`: an admin bans someone not banned yet (removing them if a member of lower role,
    /// which leaves a rotation pending); a banned user can never be added again.
    /// `BanAndRotate` bans a current member and starts the next epoch in the same entry.
    fn ban(
        &mut self,
        by: &Authority<'_>,
        username: &str,
        new_epoch: Option<(&NewEpoch, EntryPoint)>,
    ) -> Result<(), LogErrorKind> {
        by.require(Role::Admin)?;
        if self.banned.contains(username) {
            return Err(LogErrorKind::Banned(username.to_owned()));
        }
        if username == by.author {
            return Err(LogErrorKind::TargetsAuthor);
        }
        let is_member = self.members.contains_key(username);
        if is_member {
            self.check_can_remove(by, username)?;
        }
        if let Some((new_epoch, _)) = new_epoch {
            if !is_member {
                return Err(LogErrorKind::NotAMember(username.to_owned()));
            }
            self.check_new_epoch(new_epoch)?;
        }
        if is_member {
            self.members.remove(username);
            self.rotation_pending = true;
        }
        self.banned.insert(username.to_owned());
        if let Some((new_epoch, at)) = new_epoch {
            self.start_epoch(new_epoch, at);
        }
        Ok(())
    }

    /// `SetRole`: the owner makes another member admin or member (never owner).
    fn set_role(
        &mut self,
        by: &Authority<'_>,
        username: &str,
        role: Role,
    ) -> Result<(), LogErrorKind> {
        by.require(Role::Owner)?;
        if username == by.author {
            return Err(LogErrorKind::TargetsAuthor);
        }
        if role == Role::Owner {
            return Err(by.not_authorized());
        }
        let member = self
            .members
            .get_mut(username)
            .ok_or_else(|| LogErrorKind::NotAMember(username.to_owned()))?;
        member.role = role;
        Ok(())
    }

    /// `Rotate`: an admin starts the next epoch, committing to its key, with the current
    /// members as its members; the pending rotation is done. While a rotation is pending
    /// (after a leave) any member may complete it, without new metadata: only admins
    /// change the room's name and topic.
    fn rotate(
        &mut self,
        by: &Authority<'_>,
        new_epoch: &NewEpoch,
        at: EntryPoint,
    ) -> Result<(), LogErrorKind> {
        if by.role < Role::Admin {
            if !self.rotation_pending {
                return Err(by.not_authorized());
            }
            if !new_epoch.encrypted_metadata.is_empty() {
                return Err(LogErrorKind::NotAuthorized {
                    author: by.author.to_owned(),
                    role: by.role.as_str(),
                    action: "change the room metadata",
                });
            }
        }
        self.check_new_epoch(new_epoch)?;
        self.start_epoch(new_epoch, at);
        Ok(())
    }

    /// Checks that `new_epoch` is the next epoch.
    fn check_new_epoch(&self, new_epoch: &NewEpoch) -> Result<(), LogErrorKind> {
        let expected = self.current_epoch() + 1;
        if new_epoch.epoch != expected {
            return Err(LogErrorKind::EpochGap {
                expected,
                found: new_epoch.epoch,
            });
        }
        Ok(())
    }

    /// Starts `new_epoch` (already checked with [`Self::check_new_epoch`]) with the current
    /// members as its members; empty metadata keeps the current one. No rotation is pending
    /// afterwards.
    fn start_epoch(&mut self, new_epoch: &NewEpoch, at: EntryPoint) {
        self.epochs.push(EpochRecord {
            key_commitment: new_epoch.key_commitment,
            members: self
                .members
                .iter()
                .map(|(name, record)| (name.clone(), record.keys))
                .collect(),
            started_at_ms: at.time_ms,
            started_at_seq: at.seq,
        });
        if !new_epoch.encrypted_metadata.is_empty() {
            self.metadata_epoch = new_epoch.epoch;
            self.encrypted_metadata = new_epoch.encrypted_metadata.clone();
        }
        self.rotation_pending = false;
    }

    /// `Invite`: an admin publishes a new invite's token hash, expiry and number of uses.
    fn invite(
        &mut self,
        by: &Authority<'_>,
        token_hash: &[u8; KEY_LEN],
        expires_at_ms: u64,
        max_uses: u32,
    ) -> Result<(), LogErrorKind> {
        by.require(Role::Admin)?;
        if max_uses == 0 {
            return Err(LogErrorKind::InvalidInvite(
                "an invite needs at least one use",
            ));
        }
        if self.invites.contains_key(token_hash) {
            return Err(LogErrorKind::InvalidInvite(
                "this invite was already published",
            ));
        }
        self.invites.insert(
            *token_hash,
            InviteRecord {
                expires_at_ms,
                max_uses,
                created_by: by.author.to_owned(),
            },
        );
        Ok(())
    }

    /// `Leave`: any member but the owner leaves; a rotation is then pending.
    fn leave(&mut self, by: &Authority<'_>) -> Result<(), LogErrorKind> {
        if by.role == Role::Owner {
            return Err(LogErrorKind::OwnerCannotLeave);
        }
        self.members.remove(by.author);
        self.rotation_pending = true;
        Ok(())
    }

    /// Whether the author may remove `target`: someone else, a current member, of a lower
    /// role than the author.
    fn check_can_remove(&self, by: &Authority<'_>, target: &str) -> Result<(), LogErrorKind> {
        if target == by.author {
            return Err(LogErrorKind::TargetsAuthor);
        }
        let member = self
            .members
            .get(target)
            .ok_or_else(|| LogErrorKind::NotAMember(target.to_owned()))?;
        if member.role >= by.role {
            return Err(by.not_authorized());
        }
        Ok(())
    }

    /// The room id.
    pub fn room_id(&self) -> RoomId {
        self.room_id
    }

    /// Current members by username.
    pub fn members(&self) -> &BTreeMap<String, MemberRecord> {
        &self.members
    }

    /// One current member.
    pub fn member(&self, username: &str) -> Option<&MemberRecord> {
        self.members.get(username)
    }

    /// The current epoch number.
    pub fn current_epoch(&self) -> u64 {
        self.epochs.len() as u64 - 1
    }

    /// What the log says of `epoch`, if it exists.
    pub fn epoch(&self, epoch: u64) -> Option<&EpochRecord> {
        usize::try_from(epoch)
            .ok()
            .and_then(|index| self.epochs.get(index))
    }

    /// The keys `username` had while a member during `epoch`, if they were one.
    pub fn member_keys_in_epoch(&self, username: &str, epoch: u64) -> Option<&MemberKeys> {
        self.epoch(epoch)?.members.get(username)
    }

    /// Whether `username` was a member at some point during `epoch`.
    pub fn was_member_in_epoch(&self, username: &str, epoch: u64) -> bool {
        self.member_keys_in_epoch(username, epoch).is_some()
    }

    /// Users barred from being added again.
    pub fn banned(&self) -> &BTreeSet<String> {
        &self.banned
    }

    /// The room policy.
    pub fn policy(&self) -> &RoomPolicy {
        &self.policy
    }

    /// When the room key is due for scheduled rotation.
    pub fn rotation_schedule(&self) -> &RotationSchedule {
        &self.rotation_schedule
    }

    /// Published invites by token hash.
    pub fn invites(&self) -> &BTreeMap<[u8; KEY_LEN], InviteRecord> {
        &self.invites
    }

    /// The latest room metadata and the epoch whose key encrypts it.
    pub fn encrypted_metadata(&self) -> (u64, &[u8]) {
        (self.metadata_epoch, &self.encrypted_metadata)
    }

    /// Whether a member left (or was removed or history cleared by an entry that did not
    /// rotate itself) since the last rotation: until a member rotates, the former member
    /// could read new messages, so no message is written and the server accepts none.
    pub fn rotation_pending(&self) -> bool {
        self.rotation_pending
    }

    /// Whether the owner deleted the room.
    pub fn deleted(&self) -> bool {
        self.deleted
    }

    /// Hash of the last entry: the `prev` of the next one.
    pub fn head_hash(&self) -> [u8; KEY_LEN] {
        self.head_hash
    }

    /// Number of entries replayed: the `seq` of the next one.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Builds the next entry (unsigned) with this state's room id, sequence and `prev`.
    pub fn next_entry(&self, author: &str, time_ms: u64, action: LogAction) -> LogEntry {
        LogEntry {
            room_id: self.room_id,
            seq: self.length,
            prev: self.head_hash,
            author: author.to_owned(),
            time_ms,
            action,
        }
    }
}

/// Where the entry being applied stands: its position and signed time.
#[derive(Debug, Clone, Copy)]
struct EntryPoint {
    seq: u64,
    time_ms: u64,
}

/// Who made the entry being applied, with their role at that point of the log.
struct Authority<'a> {
    author: &'a str,
    role: Role,
    action: &'static str,
}

impl Authority<'_> {
    /// The refusal for an author whose role does not allow the action.
    fn not_authorized(&self) -> LogErrorKind {
        LogErrorKind::NotAuthorized {
            author: self.author.to_owned(),
            role: self.role.as_str(),
            action: self.action,
        }
    }

    /// Requires at least `needed`.
    fn require(&self, needed: Role) -> Result<(), LogErrorKind> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(self.not_authorized())
        }
    }
}
