//! Encrypted attachments (docs/PROTOCOL.md section 14): a file is split into fixed-size
//! chunks, each sealed with XSalsa20-Poly1305 under a fresh random file key in the STREAM
//! construction of Hoang, Reyhanitabar, Rogaway and Vizár ("Online Authenticated-Encryption
//! and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015), as RustCrypto's `aead::stream`
//! (`StreamBE32`) implements it: the 24-byte nonce of chunk `i` is
//! `nonce_prefix (19) || u32_be(i) || last (1)`, where `last` is 1 for the final chunk only.
//! A reordered, duplicated or dropped chunk fails to open under the nonce of its position, a
//! truncated file fails because no chunk before the last opens as the last one. The chunks
//! are sealed under a chunk key derived from the file key with HKDF-SHA256 (RFC 5869) over the
//! attachment id and layout, which binds every chunk to its attachment (XSalsa20-Poly1305, the
//! secretbox of NaCl, takes no associated data).
//!
//! Everything a reader needs (the key, the nonce prefix, sizes, the SHA-256 of the whole
//! ciphertext, the media kind, MIME type, file name, dimensions and a thumbnail) travels in
//! an [`AttachmentRef`], the body of a [`crate::message::MessageKind::Attachment`] message,
//! which is signed and encrypted like text; the server only ever stores the chunks' ciphertext.
//!
//! The chunk ciphertexts are sealed and opened one at a time and in any order, so a browser
//! reads a file slice by slice, and a download can be checked chunk by chunk as it arrives.

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;
use xsalsa20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use xsalsa20poly1305::aead::KeyInit;
use xsalsa20poly1305::XSalsa20Poly1305;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::membership::{MEDIA_AUDIO, MEDIA_FILES, MEDIA_IMAGES, MEDIA_VIDEO};
use crate::primitives::{hkdf_sha256, random_bytes, KEY_LEN, TAG_LEN};

/// Domain-separation label of the HKDF `info` that derives the chunk key.
pub const CHUNK_KEY_LABEL: &[u8] = b"e2ee-chat/v1/attachment-chunk-key";
/// Domain-separation label of an [`AttachmentRef`].
pub const ATTACHMENT_LABEL: &[u8] = b"e2ee-chat/v1/attachment";
/// Length of an attachment id: 16 random bytes chosen by the uploader.
pub const ATTACHMENT_ID_LEN: usize = 16;
/// Length of the nonce prefix: the 24-byte XSalsa20 nonce less STREAM's 4-byte counter and
/// 1-byte last-chunk flag.
pub const NONCE_PREFIX_LEN: usize = 19;
/// The chunk size the clients write, in plaintext bytes (1 MiB). Sealing costs the same per
/// byte from 64 KiB up (about 500 MiB/s natively), so the size is set by the cost of one
/// request: on loopback a 100 MiB file moves at 24 MB/s up and 20 MB/s down in 64 KiB
/// chunks, 81 and 111 MB/s in 256 KiB chunks, 150 and 229 MB/s in 1 MiB chunks (README,
/// "Performance"). A browser holds a few chunks at a time, and a dropped connection loses at
/// most one.
pub const DEFAULT_CHUNK_SIZE: u32 = 1024 * 1024;
/// The smallest chunk size a reader accepts, in plaintext bytes (16 KiB).
pub const MIN_CHUNK_SIZE: u32 = 16 * 1024;
/// The largest chunk size a reader accepts, in plaintext bytes (4 MiB).
pub const MAX_CHUNK_SIZE: u32 = 4 * 1024 * 1024;
/// The largest file, in plaintext bytes (64 GiB); rooms set lower limits in their policy.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024 * 1024;
/// The longest MIME type and file name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 255;
/// The largest thumbnail carried in the message, in bytes (it must fit the 16 KiB body).
pub const MAX_THUMBNAIL_LEN: usize = 12 * 1024;

/// What kind of media an attachment is; the room policy allows each kind or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MediaKind {
    /// An image, shown inline (tag 1).
    Image = 1,
    /// A video, played inline (tag 2).
    Video = 2,
    /// Audio, played inline (tag 3).
    Audio = 3,
    /// Any other file, offered for download (tag 4).
    File = 4,
}

impl MediaKind {
    fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            1 => Ok(Self::Image),
            2 => Ok(Self::Video),
            3 => Ok(Self::Audio),
            4 => Ok(Self::File),
            _ => Err(DecodeError::UnknownTag {
                what: "media kind",
                tag,
            }),
        }
    }

    /// The kind a MIME type falls under: `image/*`, `video/*`, `audio/*`, else a file.
    pub fn of_mime(mime: &str) -> Self {
        match mime.split('/').next() {
            Some("image") => Self::Image,
            Some("video") => Self::Video,
            Some("audio") => Self::Audio,
            _ => Self::File,
        }
    }

    /// The bit of [`crate::membership::RoomPolicy::allowed_media`] that allows this kind.
    pub fn policy_bit(self) -> u32 {
        match self {
            Self::Image => MEDIA_IMAGES,
            Self::Video => MEDIA_VIDEO,
            Self::Audio => MEDIA_AUDIO,
            Self::File => MEDIA_FILES,
        }
    }
}

/// Why an attachment could not be sealed, opened or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AttachmentError {
    /// A chunk failed authentication: tampered, reordered, duplicated, from another
    /// attachment, under another key, or not the last one where the last was expected.
    #[error("chunk {0} does not open: the file was tampered with, reordered or cut short")]
    ChunkRefused(u32),
    /// A chunk has another length than the layout gives for its position.
    #[error("chunk {index} has {actual} bytes where {expected} were expected")]
    ChunkLength {
        /// Its position.
        index: u32,
        /// The length the layout gives.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// A chunk position past the last one.
    #[error("chunk {0} lies past the end of the file")]
    NoSuchChunk(u32),
    /// The SHA-256 of the ciphertext differs from the one the message names.
    #[error("the file's ciphertext does not match the hash in the message")]
    HashMismatch,
    /// Sizes outside the limits above.
    #[error("invalid attachment layout: {0}")]
    Layout(&'static str),
    /// The description in the message is malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// How a file of `size` plaintext bytes is cut into chunks of `chunk_size`: every chunk is
/// full but the last, which holds the rest (an empty file is one empty chunk). Each chunk's
/// ciphertext is its plaintext plus a 16-byte tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLayout {
    /// The file's length in bytes.
    pub size: u64,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
}

impl ChunkLayout {
    /// A layout, checked against [`MIN_CHUNK_SIZE`], [`MAX_CHUNK_SIZE`], [`MAX_FILE_SIZE`].
    ///
    /// # Errors
    /// [`AttachmentError::Layout`] outside those bounds.
    pub fn new(size: u64, chunk_size: u32) -> Result<Self, AttachmentError> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(AttachmentError::Layout("chunk size out of range"));
        }
        if size > MAX_FILE_SIZE {
            return Err(AttachmentError::Layout("file too large"));
        }
        Ok(Self { size, chunk_size })
    }

    /// How many chunks: `max(1, ceil(size / chunk_size))`.
    pub fn chunk_count(&self) -> u32 {
        let count = self.size.div_ceil(u64::from(self.chunk_size)).max(1);
        // At most MAX_FILE_SIZE / MIN_CHUNK_SIZE = 4,194,304 chunks.
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// The plaintext length of chunk `index`, or `None` past the end.
    pub fn plaintext_len(&self, index: u32) -> Option<usize> {
        let count = self.chunk_count();
        if index >= count {
            return None;
        }
        let start = u64::from(index) * u64::from(self.chunk_size);
        let end = (start + u64::from(self.chunk_size)).min(self.size);
        usize::try_from(end - start).ok()
    }

    /// The ciphertext length of chunk `index` (plaintext plus the 16-byte tag).
    pub fn ciphertext_len(&self, index: u32) -> Option<usize> {
        self.plaintext_len(index).map(|length| length + TAG_LEN)
    }

    /// The whole ciphertext's length: the file plus 16 bytes per chunk.
    pub fn ciphertext_size(&self) -> u64 {
        self.size + u64::from(self.chunk_count()) * TAG_LEN as u64
    }

    /// The byte offset of chunk `index` in the whole ciphertext.
    pub fn ciphertext_offset(&self, index: u32) -> u64 {
        u64::from(index) * (u64::from(self.chunk_size) + TAG_LEN as u64)
    }

    fn is_last(&self, index: u32) -> bool {
        index + 1 == self.chunk_count()
    }
}

/// A file key: 32 random bytes, zeroized on drop, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FileKey([u8; KEY_LEN]);

impl PartialEq for FileKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for FileKey {}

impl FileKey {
    /// A key from its 32 bytes (a stored or test key; new keys come from
    /// [`AttachmentCipher::generate`]).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(..)")
    }
}

/// The key material and layout that seal and open one attachment's chunks.
#[derive(Clone, PartialEq, Eq)]
pub struct AttachmentCipher {
    /// The attachment's id.
    pub id: [u8; ATTACHMENT_ID_LEN],
    /// The file key.
    pub key: FileKey,
    /// STREAM's nonce prefix.
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// The chunk layout.
    pub layout: ChunkLayout,
}

impl std::fmt::Debug for AttachmentCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentCipher")
            .field("id", &hex::encode(self.id))
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl AttachmentCipher {
    /// A fresh id, key and nonce prefix for a file of `size` bytes in chunks of `chunk_size`.
    ///
    /// # Errors
    /// [`AttachmentError::Layout`] for sizes outside the limits.
    pub fn generate(
        size: u64,
        chunk_size: u32,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, AttachmentError> {
        Ok(Self {
            id: random_bytes(rng),
            key: FileKey(random_bytes(rng)),
            nonce_prefix: random_bytes(rng),
            layout: ChunkLayout::new(size, chunk_size)?,
        })
    }

    /// The HKDF `info` of the chunk key: `CHUNK_KEY_LABEL || id || u64_be(size) ||
    /// u32_be(chunk_size)`, in the canonical encoding of section 2.
    pub fn chunk_key_info(&self) -> Vec<u8> {
        Encoder::new(CHUNK_KEY_LABEL)
            .fixed(&self.id)
            .u64(self.layout.size)
            .u32(self.layout.chunk_size)
            .finish()
    }

    /// `HKDF-SHA256(ikm = file key, salt = empty, info = chunk_key_info)`, 32 bytes: a key
    /// for this attachment id and layout only.
    pub fn chunk_key(&self) -> FileKey {
        let mut key = [0u8; KEY_LEN];
        // 32 bytes is far below HKDF's limit of 255 * 32.
        let _ = hkdf_sha256(self.key.as_bytes(), &[], &self.chunk_key_info(), &mut key);
        FileKey(key)
    }

    fn stream(&self) -> StreamBE32<XSalsa20Poly1305> {
        let aead = XSalsa20Poly1305::new(self.chunk_key().as_bytes().into());
        StreamBE32::from_aead(aead, self.nonce_prefix.as_slice().into())
    }

    /// Seals chunk `index`, whose plaintext must have the layout's length for that position.
    ///
    /// # Errors
    /// [`AttachmentError::NoSuchChunk`] or [`AttachmentError::ChunkLength`].
    pub fn seal_chunk(&self, index: u32, plaintext: &[u8]) -> Result<Vec<u8>, AttachmentError> {
        let expected = self
            .layout
            .plaintext_len(index)
            .ok_or(AttachmentError::NoSuchChunk(index))?;
        if plaintext.len() != expected {
            return Err(AttachmentError::ChunkLength {
                index,
                expected,
                actual: plaintext.len(),
            });
        }
        self.stream()
            .encrypt(index, self.layout.is_last(index), plaintext)
            .map_err(|_| AttachmentError::ChunkRefused(index))
    }

    /// Opens the ciphertext of chunk `index`.
    ///
    /// # Errors
    /// [`AttachmentError::NoSuchChunk`], [`AttachmentError::ChunkLength`], or
    /// [`AttachmentError::ChunkRefused`] when it does not authenticate at that position.
    pub fn open_chunk(&self, index: u32, ciphertext: &[u8]) -> Result<Vec<u8>, AttachmentError> {
        let expected = self
            .layout
            .ciphertext_len(index)
            .ok_or(AttachmentError::NoSuchChunk(index))?;
        if ciphertext.len() != expected {
            return Err(AttachmentError::ChunkLength {
                index,
                expected,
                actual: ciphertext.len(),
            });
        }
        self.stream()
            .decrypt(index, self.layout.is_last(index), ciphertext)
            .map_err(|_| AttachmentError::ChunkRefused(index))
    }
}

/// The SHA-256 of a whole ciphertext, fed chunk by chunk in order.
#[derive(Debug, Clone, Default)]
pub struct CiphertextHash(Sha256);

impl CiphertextHash {
    /// Adds the next chunk's ciphertext.
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Image or video dimensions, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// What a message says of its attachment: everything needed to fetch, check, open and show
/// it. The body of a [`crate::message::MessageKind::Attachment`] message; its layout is in
/// docs/PROTOCOL.md section 14.
#[derive(Clone, PartialEq, Eq)]
pub struct AttachmentRef {
    /// The id, key, nonce prefix and layout.
    pub cipher: AttachmentCipher,
    /// SHA-256 of the whole ciphertext (every chunk's, in order).
    pub ciphertext_sha256: [u8; 32],
    /// The media kind.
    pub kind: MediaKind,
    /// The MIME type the sender's browser gave, at most [`MAX_NAME_LEN`] bytes.
    pub mime: String,
    /// The file name, at most [`MAX_NAME_LEN`] bytes, no path separators or control
    /// characters.
    pub name: String,
    /// For images and video, their size in pixels.
    pub dimensions: Option<Dimensions>,
    /// A small preview image (at most [`MAX_THUMBNAIL_LEN`] bytes) and its MIME type; empty
    /// when there is none.
    pub thumbnail: Vec<u8>,
    /// The thumbnail's MIME type (`image/png` or `image/jpeg`), empty without one.
    pub thumbnail_mime: String,
}

impl std::fmt::Debug for AttachmentRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentRef")
            .field("cipher", &self.cipher)
            .field("kind", &self.kind)
            .field("mime", &self.mime)
            .field("name", &self.name)
            .field("dimensions", &self.dimensions)
            .field("thumbnail_len", &self.thumbnail.len())
            .finish_non_exhaustive()
    }
}

/// Whether `name` is a file name this client shows and saves under: 1 to
/// [`MAX_NAME_LEN`] bytes, no `/`, `\`, control characters, and not `.` or `..`.
pub fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

impl AttachmentRef {
    /// Checks the fields' bounds: names, thumbnail, and a thumbnail MIME type exactly when
    /// there is a thumbnail.
    ///
    /// # Errors
    /// [`AttachmentError::Layout`] naming the first field out of bounds.
    pub fn validate(&self) -> Result<(), AttachmentError> {
        if self.mime.len() > MAX_NAME_LEN || self.mime.chars().any(char::is_control) {
            return Err(AttachmentError::Layout("MIME type"));
        }
        if !valid_file_name(&self.name) {
            return Err(AttachmentError::Layout("file name"));
        }
        if self.thumbnail.len() > MAX_THUMBNAIL_LEN {
            return Err(AttachmentError::Layout("thumbnail too large"));
        }
        let thumbnail_mime_ok = if self.thumbnail.is_empty() {
            self.thumbnail_mime.is_empty()
        } else {
            matches!(self.thumbnail_mime.as_str(), "image/png" | "image/jpeg")
        };
        if !thumbnail_mime_ok {
            return Err(AttachmentError::Layout("thumbnail type"));
        }
        ChunkLayout::new(self.cipher.layout.size, self.cipher.layout.chunk_size)?;
        Ok(())
    }

    /// The canonical encoding (docs/PROTOCOL.md section 14).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut encoder = Encoder::new(ATTACHMENT_LABEL);
        encoder
            .fixed(&self.cipher.id)
            .fixed(self.cipher.key.as_bytes())
            .fixed(&self.cipher.nonce_prefix)
            .u64(self.cipher.layout.size)
            .u32(self.cipher.layout.chunk_size)
            .fixed(&self.ciphertext_sha256)
            .u8(self.kind as u8)
            .string(&self.mime)
            .string(&self.name);
        match self.dimensions {
            None => encoder.u8(0),
            Some(dimensions) => encoder.u8(1).u32(dimensions.width).u32(dimensions.height),
        };
        encoder
            .bytes(&self.thumbnail)
            .string(&self.thumbnail_mime)
            .finish()
    }

    /// Decodes and validates an encoding made by [`AttachmentRef::to_bytes`].
    ///
    /// # Errors
    /// [`AttachmentError::Decode`] for malformed bytes, [`AttachmentError::Layout`] for
    /// values out of bounds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AttachmentError> {
        let mut decoder = Decoder::new(bytes);
        decoder.label(ATTACHMENT_LABEL)?;
        let id = decoder.fixed::<ATTACHMENT_ID_LEN>()?;
        let key = FileKey(decoder.fixed::<KEY_LEN>()?);
        let nonce_prefix = decoder.fixed::<NONCE_PREFIX_LEN>()?;
        let size = decoder.u64()?;
        let chunk_size = decoder.u32()?;
        let ciphertext_sha256 = decoder.fixed::<32>()?;
        let kind = MediaKind::from_tag(decoder.u8()?)?;
        let mime = decoder.string()?.to_owned();
        let name = decoder.string()?.to_owned();
        let dimensions = match decoder.u8()? {
            0 => None,
            1 => Some(Dimensions {
                width: decoder.u32()?,
                height: decoder.u32()?,
            }),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "dimensions",
                    tag,
                }
                .into())
            }
        };
        let thumbnail = decoder.bytes()?.to_vec();
        let thumbnail_mime = decoder.string()?.to_owned();
        decoder.finish()?;
        let attachment = Self {
            cipher: AttachmentCipher {
                id,
                key,
                nonce_prefix,
                layout: ChunkLayout::new(size, chunk_size)?,
            },
            ciphertext_sha256,
            kind,
            mime,
            name,
            dimensions,
            thumbnail,
            thumbnail_mime,
        };
        attachment.validate()?;
        Ok(attachment)
    }

    /// Checks a downloaded ciphertext's SHA-256 against the one the message names.
    ///
    /// # Errors
    /// [`AttachmentError::HashMismatch`].
    pub fn check_hash(&self, digest: &[u8; 32]) -> Result<(), AttachmentError> {
        if bool::from(digest.ct_eq(&self.ciphertext_sha256)) {
            Ok(())
        } else {
            Err(AttachmentError::HashMismatch)
        }
    }
}
