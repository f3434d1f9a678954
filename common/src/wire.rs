//! Serde building blocks for the JSON wire format: base64 byte strings (RFC 4648 section 4,
//! standard alphabet with padding) and fixed-length base64 arrays.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A byte string carried in JSON as standard base64 with padding.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Base64(pub Vec<u8>);

impl Serialize for Base64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Base64)
            .map_err(|_| D::Error::custom("invalid base64"))
    }
}

impl fmt::Debug for Base64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Base64 {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

/// Exactly `N` bytes carried in JSON as standard base64 with padding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Base64Array<const N: usize>(pub [u8; N]);

impl<const N: usize> Serialize for Base64Array<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Base64Array<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = Base64::deserialize(deserializer)?.0;
        let array: [u8; N] = bytes
            .try_into()
            .map_err(|_| D::Error::custom(format!("expected {N} bytes of base64")))?;
        Ok(Self(array))
    }
}

impl<const N: usize> fmt::Debug for Base64Array<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64Array<{N}>")
    }
}

/// OpenAPI schemas of the byte strings: `type: string`, `contentEncoding: base64`, and a
/// pattern that only canonical standard base64 (RFC 4648 section 4, padded, unused bits
/// zero) matches, of exactly `N` bytes for [`Base64Array`].
#[cfg(feature = "openapi")]
mod schema {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::RefOr;
    use utoipa::{PartialSchema, ToSchema};

    use super::{Base64, Base64Array};

    /// Base64 characters whose low 2 bits are zero (the last character before one `=`).
    const LOW_2_ZERO: &str = "[AEIMQUYcgkosw048]";
    /// Base64 characters whose low 4 bits are zero (the last character before `==`).
    const LOW_4_ZERO: &str = "[AQgw]";
    const CHAR: &str = "[A-Za-z0-9+/]";

    fn string(description: String, pattern: String) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_encoding("base64")
            .description(Some(description))
            .pattern(Some(pattern))
            .into()
    }

    impl PartialSchema for Base64 {
        fn schema() -> RefOr<Schema> {
            string(
                "bytes in standard base64 with padding".to_owned(),
                format!("^(?:{CHAR}{{4}})*(?:{CHAR}{LOW_4_ZERO}==|{CHAR}{{2}}{LOW_2_ZERO}=)?$"),
            )
        }
    }

    impl ToSchema for Base64 {}

    impl<const N: usize> PartialSchema for Base64Array<N> {
        fn schema() -> RefOr<Schema> {
            let tail = match N % 3 {
                1 => format!("{CHAR}{LOW_4_ZERO}=="),
                2 => format!("{CHAR}{{2}}{LOW_2_ZERO}="),
                _ => String::new(),
            };
            string(
                format!("exactly {N} bytes in standard base64 with padding"),
                format!("^(?:{CHAR}{{4}}){{{}}}{tail}$", N / 3),
            )
        }
    }

    impl<const N: usize> ToSchema for Base64Array<N> {
        fn name() -> Cow<'static, str> {
            Cow::Owned(format!("Bytes{N}"))
        }
    }
}
