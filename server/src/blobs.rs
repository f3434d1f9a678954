//! Where attachment chunks live: an [`object_store`] store, the local filesystem by default
//! (a folder beside the database), any store `object_store` can open by URL otherwise
//! (`--attachments-url`; S3-compatible stores with the server's `s3` cargo feature). Each
//! chunk is one object, `attachments/<room hex>/<attachment hex>/<index>`, holding exactly the
//! ciphertext the uploader sent: the server never has anything readable to write.
//!
//! A chunk is written whole or not at all (the filesystem store writes a temporary file and
//! renames it), and the database records it only once it is written, so a download never
//! serves half a chunk.

use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use common::attachment::ATTACHMENT_ID_LEN;
use common::membership::RoomId;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// Why the blob store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The store URL does not parse or names a store this build cannot open.
    #[error("attachment store url: {0}")]
    Url(String),
    /// The store failed.
    #[error("attachment store")]
    Store(#[from] object_store::Error),
    /// The local folder could not be created.
    #[error("cannot create the attachment folder")]
    Folder(#[source] std::io::Error),
}

/// The attachment chunk store.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    base: Path,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("store", &self.store.to_string())
            .field("base", &self.base)
            .finish()
    }
}

impl BlobStore {
    /// A store in the local folder `folder`, created when missing.
    ///
    /// # Errors
    /// [`BlobError::Folder`] when it cannot be created, [`BlobError::Store`] otherwise.
    pub fn local(folder: &FsPath) -> Result<Self, BlobError> {
        std::fs::create_dir_all(folder).map_err(BlobError::Folder)?;
        Ok(Self {
            store: Arc::new(LocalFileSystem::new_with_prefix(folder)?),
            base: Path::default(),
        })
    }

    /// A store in memory (an in-memory database's attachments).
    pub fn memory() -> Self {
        Self {
            store: Arc::new(InMemory::new()),
            base: Path::default(),
        }
    }

    /// The store a URL names: `file:///srv/chat/attachments`, `memory:///`, or with the `s3`
    /// feature `s3://bucket/prefix` (credentials from the usual `AWS_*` variables).
    ///
    /// # Errors
    /// [`BlobError::Url`] for a URL that does not parse or names an unsupported store.
    pub fn from_url(url: &str) -> Result<Self, BlobError> {
        let parsed = url::Url::parse(url).map_err(|error| BlobError::Url(error.to_string()))?;
        if parsed.scheme() == "file" {
            let folder = parsed
                .to_file_path()
                .map_err(|()| BlobError::Url("not a local path".into()))?;
            return Self::local(&folder);
        }
        let (store, base) = object_store::parse_url_opts(&parsed, std::env::vars())
            .map_err(|error| BlobError::Url(error.to_string()))?;
        Ok(Self {
            store: Arc::from(store),
            base,
        })
    }

    fn attachment_prefix(&self, room_id: &RoomId, id: &[u8; ATTACHMENT_ID_LEN]) -> Path {
        self.base
            .clone()
            .join("attachments")
            .join(room_id.to_hex())
            .join(hex::encode(id))
    }

    fn chunk_path(&self, room_id: &RoomId, id: &[u8; ATTACHMENT_ID_LEN], index: u32) -> Path {
        self.attachment_prefix(room_id, id)
            .join(format!("{index:08}"))
    }

    /// Writes chunk `index` of an attachment, replacing it whole.
    ///
    /// # Errors
    /// [`BlobError::Store`].
    pub async fn put_chunk(
        &self,
        room_id: &RoomId,
        id: &[u8; ATTACHMENT_ID_LEN],
        index: u32,
        bytes: Bytes,
    ) -> Result<(), BlobError> {
        let path = self.chunk_path(room_id, id, index);
        self.store.put(&path, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// Reads `range` (bytes within the chunk) of chunk `index`.
    ///
    /// # Errors
    /// [`BlobError::Store`], also for a chunk that is not there.
    pub async fn get_chunk(
        &self,
        room_id: &RoomId,
        id: &[u8; ATTACHMENT_ID_LEN],
        index: u32,
        range: Range<u64>,
    ) -> Result<Bytes, BlobError> {
        let path = self.chunk_path(room_id, id, index);
        Ok(self.store.get_range(&path, range).await?)
    }

    /// Deletes chunks `0..chunk_count` of an attachment; chunks never written are skipped.
    ///
    /// # Errors
    /// [`BlobError::Store`] for a failure other than a missing chunk.
    pub async fn delete_attachment(
        &self,
        room_id: &RoomId,
        id: &[u8; ATTACHMENT_ID_LEN],
        chunk_count: u32,
    ) -> Result<(), BlobError> {
        for index in 0..chunk_count {
            match self
                .store
                .delete(&self.chunk_path(room_id, id, index))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }
}
