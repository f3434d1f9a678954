//! The actions a log entry can take, their stable tags and byte encodings, and the hash an
//! invite entry publishes instead of its token.

use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::identity::{validate_username, MemberKeys};
use crate::primitives::{self, KEY_LEN};

use super::{Role, RoomPolicy, RotationSchedule, MAX_METADATA_LEN};

/// The new epoch an entry starts, with the fields of a rotate entry: a removal, ban, add
/// or history clearing that carries one takes effect together with the new key, so there is
/// no moment in which the old key is the current one after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEpoch {
    /// The new epoch: the current one plus 1.
    pub epoch: u64,
    /// Commitment to the new epoch's key, see [`crate::room_key::key_commitment`].
    pub key_commitment: [u8; KEY_LEN],
    /// The room metadata encrypted under the new key, or empty to keep the current metadata
    /// (under the key that encrypts it now).
    pub encrypted_metadata: Vec<u8>,
}

impl NewEpoch {
    fn encode(&self, encoder: &mut Encoder) {
        encoder
            .u64(self.epoch)
            .fixed(&self.key_commitment)
            .bytes(&self.encrypted_metadata);
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            epoch: decoder.u64()?,
            key_commitment: decoder.fixed()?,
            encrypted_metadata: decode_metadata(decoder)?,
        })
    }
}

/// Reads a length-prefixed encrypted metadata field of at most [`MAX_METADATA_LEN`] bytes.
fn decode_metadata(decoder: &mut Decoder<'_>) -> Result<Vec<u8>, DecodeError> {
    let bytes = decoder.bytes()?.to_vec();
    if bytes.len() > MAX_METADATA_LEN {
        return Err(DecodeError::InvalidValue("metadata length"));
    }
    Ok(bytes)
}

/// Reads a username and checks its syntax.
fn decode_username(decoder: &mut Decoder<'_>) -> Result<String, DecodeError> {
    let username = decoder.string()?.to_owned();
    validate_username(&username).map_err(|_| DecodeError::InvalidValue("username"))?;
    Ok(username)
}

/// What a log entry does. Tags are stable: new actions take new tags and an old tag keeps
/// its layout. Rules have only ever widened where an older client refuses the entry anyway:
/// a member completing a pending rotation with tag 6 (protocol 3, docs/PROTOCOL.md
/// section 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogAction {
    /// Genesis (tag 1): the creator becomes owner and commits to the epoch 0 room key.
    Create {
        /// 32 random bytes that make the room id unique.
        room_nonce: [u8; KEY_LEN],
        /// The creator's public keys.
        owner_keys: MemberKeys,
        /// `SHA-256(label || room_id || 0 || K_0)`, see [`crate::room_key::key_commitment`].
        key_commitment: [u8; KEY_LEN],
        /// Room name and topic, encrypted under `K_0` ([`crate::room_key::seal_metadata`]).
        encrypted_metadata: Vec<u8>,
    },
    /// Adds a member (tag 2) with the keys the author saw for them.
    AddMember {
        /// The new member's username.
        username: String,
        /// The new member's public keys as the author verified them.
        keys: MemberKeys,
        /// The role the new member gets; never [`Role::Owner`].
        role: Role,
    },
    /// Removes a member (tag 3) and leaves a rotation pending. Clients write
    /// [`LogAction::RemoveMemberAndRotate`] instead; this tag stays readable for old logs.
    RemoveMember {
        /// Who is removed.
        username: String,
    },
    /// Removes a member if present and bars them from being added again (tag 4), leaving a
    /// rotation pending when they were a member. Clients ban a current member with
    /// [`LogAction::BanAndRotate`].
    Ban {
        /// Who is banned.
        username: String,
    },
    /// Changes a member's role (tag 5); owner only, never to owner.
    SetRole {
        /// Whose role changes.
        username: String,
        /// The new role.
        role: Role,
    },
    /// Starts a new epoch with a fresh room key (tag 6). Admins may rotate at any time; while
    /// a rotation is pending (after a leave) any member may, with empty metadata.
    Rotate {
        /// The new epoch: the current one plus 1.
        epoch: u64,
        /// Commitment to the new epoch's key.
        key_commitment: [u8; KEY_LEN],
        /// The room metadata encrypted under the new key, or empty to keep the current one.
        encrypted_metadata: Vec<u8>,
    },
    /// Sets the room's policy (tag 7).
    SetPolicy {
        /// The new policy.
        policy: RoomPolicy,
    },
    /// Publishes an invite (tag 8): the hash of a secret token, never the token itself.
    Invite {
        /// `SHA-256(label || token)`, see [`invite_token_hash`].
        token_hash: [u8; KEY_LEN],
        /// When the invite stops working, milliseconds since the Unix epoch.
        expires_at_ms: u64,
        /// How many join requests it admits.
        max_uses: u32,
    },
    /// The author leaves the room (tag 9); a rotation should follow.
    Leave,
    /// Replaces the encrypted name and topic, under the current epoch key (tag 10).
    SetMetadata {
        /// The metadata encrypted under the current epoch's key.
        encrypted_metadata: Vec<u8>,
    },
    /// The server deletes the room's stored messages (tag 11) and a rotation is pending.
    /// Clients write [`LogAction::ClearHistoryAndRotate`] instead.
    ClearHistory,
    /// The room is deleted (tag 12); no entry may follow.
    DeleteRoom,
    /// Removes a member and starts the next epoch in the same entry (tag 13), whose key is
    /// sealed only to the remaining members.
    RemoveMemberAndRotate {
        /// Who is removed.
        username: String,
        /// The epoch that starts without them.
        new_epoch: NewEpoch,
    },
    /// Bans a current member and starts the next epoch in the same entry (tag 14).
    BanAndRotate {
        /// Who is banned; a current member.
        username: String,
        /// The epoch that starts without them.
        new_epoch: NewEpoch,
    },
    /// Adds a member who joins in a new epoch (tag 15): under the "since joining" policy the
    /// newcomer then holds no key to anything written before they were added.
    AddMemberAndRotate {
        /// The new member's username.
        username: String,
        /// The new member's public keys as the author verified them.
        keys: MemberKeys,
        /// The role the new member gets; never [`Role::Owner`].
        role: Role,
        /// The epoch the newcomer joins in.
        new_epoch: NewEpoch,
    },
    /// The server deletes the stored messages and the next epoch starts (tag 16).
    ClearHistoryAndRotate {
        /// The epoch that starts after the clearing.
        new_epoch: NewEpoch,
    },
    /// Sets when the room key is rotated on schedule (tag 17).
    SetRotationSchedule {
        /// The new schedule.
        schedule: RotationSchedule,
    },
}

impl LogAction {
    /// The tag byte of this action.
    pub fn tag(&self) -> u8 {
        match self {
            Self::Create { .. } => 1,
            Self::AddMember { .. } => 2,
            Self::RemoveMember { .. } => 3,
            Self::Ban { .. } => 4,
            Self::SetRole { .. } => 5,
            Self::Rotate { .. } => 6,
            Self::SetPolicy { .. } => 7,
            Self::Invite { .. } => 8,
            Self::Leave => 9,
            Self::SetMetadata { .. } => 10,
            Self::ClearHistory => 11,
            Self::DeleteRoom => 12,
            Self::RemoveMemberAndRotate { .. } => 13,
            Self::BanAndRotate { .. } => 14,
            Self::AddMemberAndRotate { .. } => 15,
            Self::ClearHistoryAndRotate { .. } => 16,
            Self::SetRotationSchedule { .. } => 17,
        }
    }

    /// A short name, for messages and the server's logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create the room",
            Self::AddMember { .. } => "add a member",
            Self::RemoveMember { .. } => "remove a member",
            Self::Ban { .. } => "ban a user",
            Self::SetRole { .. } => "change a role",
            Self::Rotate { .. } => "rotate the room key",
            Self::SetPolicy { .. } => "change the room policy",
            Self::Invite { .. } => "create an invite",
            Self::Leave => "leave",
            Self::SetMetadata { .. } => "rename the room",
            Self::ClearHistory => "clear the history",
            Self::DeleteRoom => "delete the room",
            Self::RemoveMemberAndRotate { .. } => "remove a member",
            Self::BanAndRotate { .. } => "ban a user",
            Self::AddMemberAndRotate { .. } => "add a member",
            Self::ClearHistoryAndRotate { .. } => "clear the history",
            Self::SetRotationSchedule { .. } => "change the rotation schedule",
        }
    }

    /// The new epoch this entry starts, if it is a rotate entry or one of the actions that
    /// rotate together with their change.
    pub fn new_epoch(&self) -> Option<NewEpoch> {
        match self {
            Self::Rotate {
                epoch,
                key_commitment,
                encrypted_metadata,
            } => Some(NewEpoch {
                epoch: *epoch,
                key_commitment: *key_commitment,
                encrypted_metadata: encrypted_metadata.clone(),
            }),
            Self::RemoveMemberAndRotate { new_epoch, .. }
            | Self::BanAndRotate { new_epoch, .. }
            | Self::AddMemberAndRotate { new_epoch, .. }
            | Self::ClearHistoryAndRotate { new_epoch } => Some(new_epoch.clone()),
            _ => None,
        }
    }

    /// The member an add entry adds, with the keys it records (tags 2 and 15).
    pub fn added_member(&self) -> Option<(&str, &MemberKeys)> {
        match self {
            Self::AddMember { username, keys, .. }
            | Self::AddMemberAndRotate { username, keys, .. } => Some((username, keys)),
            _ => None,
        }
    }

    /// The user a ban entry bans (tags 4 and 14).
    pub fn banned_user(&self) -> Option<&str> {
        match self {
            Self::Ban { username } | Self::BanAndRotate { username, .. } => Some(username),
            _ => None,
        }
    }

    /// Whether the entry clears the room's stored history (tags 11 and 16).
    pub fn clears_history(&self) -> bool {
        matches!(
            self,
            Self::ClearHistory | Self::ClearHistoryAndRotate { .. }
        )
    }

    pub(super) fn encode(&self, encoder: &mut Encoder) {
        encoder.u8(self.tag());
        match self {
            Self::Create {
                room_nonce,
                owner_keys,
                key_commitment,
                encrypted_metadata,
            } => {
                encoder.fixed(room_nonce);
                owner_keys.encode(encoder);
                encoder.fixed(key_commitment).bytes(encrypted_metadata);
            }
            Self::AddMember {
                username,
                keys,
                role,
            } => {
                encoder.string(username);
                keys.encode(encoder);
                encoder.u8(role.tag());
            }
            Self::RemoveMember { username } | Self::Ban { username } => {
                encoder.string(username);
            }
            Self::SetRole { username, role } => {
                encoder.string(username).u8(role.tag());
            }
            Self::Rotate {
                epoch,
                key_commitment,
                encrypted_metadata,
            } => {
                encoder
                    .u64(*epoch)
                    .fixed(key_commitment)
                    .bytes(encrypted_metadata);
            }
            Self::SetPolicy { policy } => policy.encode(encoder),
            Self::Invite {
                token_hash,
                expires_at_ms,
                max_uses,
            } => {
                encoder.fixed(token_hash).u64(*expires_at_ms).u32(*max_uses);
            }
            Self::SetMetadata { encrypted_metadata } => {
                encoder.bytes(encrypted_metadata);
            }
            Self::Leave | Self::ClearHistory | Self::DeleteRoom => {}
            Self::RemoveMemberAndRotate {
                username,
                new_epoch,
            }
            | Self::BanAndRotate {
                username,
                new_epoch,
            } => {
                encoder.string(username);
                new_epoch.encode(encoder);
            }
            Self::AddMemberAndRotate {
                username,
                keys,
                role,
                new_epoch,
            } => {
                encoder.string(username);
                keys.encode(encoder);
                encoder.u8(role.tag());
                new_epoch.encode(encoder);
            }
            Self::ClearHistoryAndRotate { new_epoch } => new_epoch.encode(encoder),
            Self::SetRotationSchedule { schedule } => schedule.encode(encoder),
        }
    }

    pub(super) fn decode(decoder: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let username = decode_username;
        let metadata = decode_metadata;
        match decoder.u8()? {
            1 => Ok(Self::Create {
                room_nonce: decoder.fixed()?,
                owner_keys: MemberKeys::decode(decoder)?,
                key_commitment: decoder.fixed()?,
                encrypted_metadata: metadata(decoder)?,
            }),
            2 => Ok(Self::AddMember {
                username: username(decoder)?,
                keys: MemberKeys::decode(decoder)?,
                role: Role::from_tag(decoder.u8()?)?,
            }),
            3 => Ok(Self::RemoveMember {
                username: username(decoder)?,
            }),
            4 => Ok(Self::Ban {
                username: username(decoder)?,
            }),
            5 => Ok(Self::SetRole {
                username: username(decoder)?,
                role: Role::from_tag(decoder.u8()?)?,
            }),
            6 => Ok(Self::Rotate {
                epoch: decoder.u64()?,
                key_commitment: decoder.fixed()?,
                encrypted_metadata: metadata(decoder)?,
            }),
            7 => Ok(Self::SetPolicy {
                policy: RoomPolicy::decode(decoder)?,
            }),
            8 => Ok(Self::Invite {
                token_hash: decoder.fixed()?,
                expires_at_ms: decoder.u64()?,
                max_uses: decoder.u32()?,
            }),
            9 => Ok(Self::Leave),
            10 => Ok(Self::SetMetadata {
                encrypted_metadata: metadata(decoder)?,
            }),
            11 => Ok(Self::ClearHistory),
            12 => Ok(Self::DeleteRoom),
            13 => Ok(Self::RemoveMemberAndRotate {
                username: username(decoder)?,
                new_epoch: NewEpoch::decode(decoder)?,
            }),
            14 => Ok(Self::BanAndRotate {
                username: username(decoder)?,
                new_epoch: NewEpoch::decode(decoder)?,
            }),
            15 => Ok(Self::AddMemberAndRotate {
                username: username(decoder)?,
                keys: MemberKeys::decode(decoder)?,
                role: Role::from_tag(decoder.u8()?)?,
                new_epoch: NewEpoch::decode(decoder)?,
            }),
            16 => Ok(Self::ClearHistoryAndRotate {
                new_epoch: NewEpoch::decode(decoder)?,
            }),
            17 => Ok(Self::SetRotationSchedule {
                schedule: RotationSchedule::decode(decoder)?,
            }),
            tag => Err(DecodeError::UnknownTag {
                what: "log action",
                tag,
            }),
        }
    }
}

/// Domain-separation label of invite token hashes.
pub const INVITE_TOKEN_LABEL: &[u8] = b"e2ee-chat/v1/invite-token";

/// `SHA-256(label || token)`: what an invite entry publishes instead of the token.
pub fn invite_token_hash(token: &[u8]) -> [u8; KEY_LEN] {
    let mut encoder = Encoder::new(INVITE_TOKEN_LABEL);
    encoder.bytes(token);
    primitives::sha256(&encoder.finish())
}
