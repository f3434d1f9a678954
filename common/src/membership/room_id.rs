//! The room id: 32 bytes derived from signed fields of the genesis entry, written as hex.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encoding::{DecodeError, Encoder};
use crate::identity::MemberKeys;
use crate::primitives::{self, KEY_LEN};

use super::ROOM_ID_LABEL;

/// A room's identifier: 32 bytes derived from its genesis entry, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub [u8; KEY_LEN]);

impl RoomId {
    /// `SHA-256(label || creator || creator x25519 || creator ed25519 || room_nonce)`.
    ///
    /// Every input is a field of the genesis entry, which the creator signs, so the server can
    /// neither swap the genesis of a room nor make two rooms share an id.
    pub fn derive(creator: &str, creator_keys: &MemberKeys, room_nonce: &[u8; KEY_LEN]) -> Self {
        let mut encoder = Encoder::new(ROOM_ID_LABEL);
        encoder.string(creator);
        creator_keys.encode(&mut encoder);
        encoder.fixed(room_nonce);
        Self(primitives::sha256(&encoder.finish()))
    }

    /// Lowercase hex, as used in URLs and JSON.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] for anything else.
    pub fn from_hex(text: &str) -> Result<Self, DecodeError> {
        let mut bytes = [0u8; KEY_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| DecodeError::InvalidValue("room id"))?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self.to_hex())
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for RoomId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for RoomId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text).map_err(|_| serde::de::Error::custom("room id must be 64 hex digits"))
    }
}

/// The OpenAPI schema of a room id: 64 hex digits (written lowercase; read in either case).
#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::RefOr;
    use utoipa::{PartialSchema, ToSchema};

    use super::RoomId;

    impl PartialSchema for RoomId {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("a room id: 64 hex digits, lowercase when written"))
                .pattern(Some("^[0-9a-fA-F]{64}$"))
                .into()
        }
    }

    impl ToSchema for RoomId {}
}
