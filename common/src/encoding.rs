//! Canonical byte encoding for everything that is signed, hashed or encrypted.
//!
//! The rules (docs/PROTOCOL.md section 2): integers are big-endian and fixed width, keys and
//! hashes are written raw at their fixed length, and every variable-length field (labels,
//! strings, byte strings) is preceded by its length as a big-endian `u32`. Every signed or
//! hashed object starts with a domain-separation label written as such a byte string, so no
//! two kinds of object can be confused.

use thiserror::Error;

/// Why a byte string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the field was complete.
    #[error("input is truncated")]
    Truncated,
    /// The object starts with another domain-separation label than the one expected.
    #[error("unexpected domain-separation label")]
    WrongLabel,
    /// A string field is not valid UTF-8.
    #[error("string field is not valid utf-8")]
    InvalidUtf8,
    /// Bytes remain after the last field.
    #[error("trailing bytes after the last field")]
    TrailingBytes,
    /// A tag byte names no known variant.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which enumeration the tag belongs to.
        what: &'static str,
        /// The tag byte found.
        tag: u8,
    },
    /// A field holds a value outside its allowed range.
    #[error("invalid {0}")]
    InvalidValue(&'static str),
}

/// Writes fields in canonical order into a growing buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    buffer: Vec<u8>,
}

impl Encoder {
    /// Starts an object with its domain-separation `label` (written length-prefixed).
    pub fn new(label: &[u8]) -> Self {
        let mut encoder = Self::default();
        encoder.bytes(label);
        encoder
    }

    /// Starts a buffer with no label, for objects that are only ever embedded in another.
    pub fn unlabelled() -> Self {
        Self::default()
    }

    /// Appends one byte.
    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.buffer.push(value);
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.buffer.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.buffer.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a fixed-length field (a key, a hash, a nonce) with no length prefix.
    pub fn fixed(&mut self, value: &[u8]) -> &mut Self {
        self.buffer.extend_from_slice(value);
        self
    }

    /// Appends a variable-length byte string as `u32 length || bytes`.
    ///
    /// Fields are bounded far below 4 GiB by every caller; a longer one would be truncated
    /// in the prefix, so it is refused here by saturating (and decoding then fails).
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        let length = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.u32(length);
        self.buffer.extend_from_slice(value);
        self
    }

    /// Appends a UTF-8 string as a length-prefixed byte string.
    pub fn string(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    /// Returns the encoded bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }
}

/// Reads fields in canonical order from a byte slice.
#[derive(Debug)]
pub struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// Starts reading `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    /// Reads the domain-separation label and checks that it equals `label`.
    ///
    /// # Errors
    /// [`DecodeError::WrongLabel`] when another label is found.
    pub fn label(&mut self, label: &[u8]) -> Result<(), DecodeError> {
        if self.bytes()? == label {
            Ok(())
        } else {
            Err(DecodeError::WrongLabel)
        }
    }

    /// Reads `length` raw bytes.
    pub fn take(&mut self, length: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < length {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(length);
        self.rest = tail;
        Ok(head)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.fixed::<4>()?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.fixed::<8>()?))
    }

    /// Reads a fixed-length field.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let length = self.u32()? as usize;
        self.take(length)
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// Checks that every byte was read.
    ///
    /// # Errors
    /// [`DecodeError::TrailingBytes`] when some remain.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}
