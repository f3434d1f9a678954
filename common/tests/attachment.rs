//! Chunked attachment encryption (docs/PROTOCOL.md section 14): a file sealed chunk by chunk
//! opens only in order, whole, under its key and id, with the ciphertext hash the message
//! names; one test per way a server could change what it serves. Natively and in headless
//! Chromium.

use common::attachment::{
    AttachmentCipher, AttachmentError, AttachmentRef, ChunkLayout, CiphertextHash, Dimensions,
    MediaKind, MAX_THUMBNAIL_LEN, MIN_CHUNK_SIZE,
};
use common::OsRng;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const CHUNK: u32 = MIN_CHUNK_SIZE;

/// A file of three and a half chunks, its cipher and its sealed chunks.
fn sealed_file() -> (Vec<u8>, AttachmentCipher, Vec<Vec<u8>>) {
    let size = CHUNK as usize * 3 + CHUNK as usize / 2;
    let file: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let cipher = AttachmentCipher::generate(size as u64, CHUNK, &mut OsRng).expect("layout");
    let chunks = file
        .chunks(CHUNK as usize)
        .enumerate()
        .map(|(index, plaintext)| {
            cipher
                .seal_chunk(u32::try_from(index).expect("few"), plaintext)
                .expect("seals")
        })
        .collect();
    (file, cipher, chunks)
}

/// Opens `chunks` as chunks 0, 1, … of `cipher`'s file, as a downloader does.
fn open_all(cipher: &AttachmentCipher, chunks: &[Vec<u8>]) -> Result<Vec<u8>, AttachmentError> {
    // A downloader asks for exactly the chunks the layout names.
    let mut file = Vec::new();
    for index in 0..cipher.layout.chunk_count() {
        let chunk = chunks
            .get(index as usize)
            .ok_or(AttachmentError::NoSuchChunk(index))?;
        file.extend(cipher.open_chunk(index, chunk)?);
    }
    Ok(file)
}

#[test]
fn a_file_opens_chunk_by_chunk_and_matches_its_hash() {
    let (file, cipher, chunks) = sealed_file();
    assert_eq!(cipher.layout.chunk_count(), 4);
    assert_eq!(
        chunks.iter().map(Vec::len).sum::<usize>() as u64,
        cipher.layout.ciphertext_size()
    );
    assert_eq!(open_all(&cipher, &chunks).expect("opens"), file);
    let mut hash = CiphertextHash::default();
    chunks.iter().for_each(|chunk| hash.update(chunk));
    let digest = hash.finish();
    let attachment = AttachmentRef {
        cipher,
        ciphertext_sha256: digest,
        kind: MediaKind::File,
        mime: "application/octet-stream".into(),
        name: "data.bin".into(),
        dimensions: None,
        thumbnail: Vec::new(),
        thumbnail_mime: String::new(),
    };
    assert_eq!(attachment.check_hash(&digest), Ok(()));
}

#[test]
fn reordered_chunks_do_not_open() {
    let (_, cipher, mut chunks) = sealed_file();
    chunks.swap(0, 1);
    assert_eq!(
        open_all(&cipher, &chunks),
        Err(AttachmentError::ChunkRefused(0))
    );
}

#[test]
fn a_dropped_chunk_does_not_open() {
    let (_, cipher, mut chunks) = sealed_file();
    chunks.remove(1);
    // Chunk 2 served at position 1: wrong counter.
    assert_eq!(
        open_all(&cipher, &chunks),
        Err(AttachmentError::ChunkRefused(1))
    );
}

#[test]
fn a_duplicated_chunk_does_not_open() {
    let (_, cipher, mut chunks) = sealed_file();
    chunks[2] = chunks[1].clone();
    assert_eq!(
        open_all(&cipher, &chunks),
        Err(AttachmentError::ChunkRefused(2))
    );
}

#[test]
fn a_truncated_file_does_not_open() {
    let (file, _, _) = sealed_file();
    // A server that serves only the first three chunks of a four-chunk file, claiming a
    // three-chunk layout: chunk 2 was not sealed as the last one.
    let cut = (CHUNK * 3) as u64;
    let full = AttachmentCipher::generate(file.len() as u64, CHUNK, &mut OsRng).expect("layout");
    let chunks: Vec<Vec<u8>> = file
        .chunks(CHUNK as usize)
        .enumerate()
        .map(|(index, plaintext)| full.seal_chunk(index as u32, plaintext).expect("seals"))
        .collect();
    let shorter = AttachmentCipher {
        layout: ChunkLayout::new(cut, CHUNK).expect("layout"),
        ..full.clone()
    };
    assert!(open_all(&shorter, &chunks[..3]).is_err());
    // And a last chunk cut short has the wrong length.
    let mut short_last = chunks.clone();
    short_last[3].truncate(100);
    assert_eq!(
        open_all(&full, &short_last),
        Err(AttachmentError::ChunkLength {
            index: 3,
            expected: CHUNK as usize / 2 + 16,
            actual: 100
        })
    );
    // The layout's own chunk count holds the reader to every chunk.
    assert_eq!(
        open_all(&full, &chunks[..3]),
        Err(AttachmentError::NoSuchChunk(3))
    );
}

#[test]
fn another_key_does_not_open() {
    let (_, cipher, chunks) = sealed_file();
    let other = AttachmentCipher::generate(cipher.layout.size, CHUNK, &mut OsRng).expect("layout");
    let wrong_key = AttachmentCipher {
        key: other.key,
        ..cipher
    };
    assert_eq!(
        open_all(&wrong_key, &chunks),
        Err(AttachmentError::ChunkRefused(0))
    );
}

#[test]
fn chunks_of_another_attachment_id_do_not_open() {
    let (_, cipher, chunks) = sealed_file();
    // Same key and prefix, another id: the associated data differs.
    let mut swapped = cipher.clone();
    swapped.id[0] ^= 1;
    assert_eq!(
        open_all(&swapped, &chunks),
        Err(AttachmentError::ChunkRefused(0))
    );
}

#[test]
fn a_changed_ciphertext_fails_its_chunk_and_the_hash() {
    let (_, cipher, mut chunks) = sealed_file();
    let mut hash = CiphertextHash::default();
    chunks.iter().for_each(|chunk| hash.update(chunk));
    let digest = hash.finish();
    chunks[3][5] ^= 0x80;
    assert_eq!(
        open_all(&cipher, &chunks),
        Err(AttachmentError::ChunkRefused(3))
    );
    let mut changed = CiphertextHash::default();
    chunks.iter().for_each(|chunk| changed.update(chunk));
    let attachment = AttachmentRef {
        cipher,
        ciphertext_sha256: digest,
        kind: MediaKind::File,
        mime: String::new(),
        name: "x".into(),
        dimensions: None,
        thumbnail: Vec::new(),
        thumbnail_mime: String::new(),
    };
    assert_eq!(
        attachment.check_hash(&changed.finish()),
        Err(AttachmentError::HashMismatch)
    );
}

#[test]
fn an_empty_file_is_one_empty_chunk() {
    let cipher = AttachmentCipher::generate(0, CHUNK, &mut OsRng).expect("layout");
    assert_eq!(cipher.layout.chunk_count(), 1);
    let sealed = cipher.seal_chunk(0, &[]).expect("seals");
    assert_eq!(sealed.len(), 16);
    assert_eq!(
        cipher.open_chunk(0, &sealed).expect("opens"),
        Vec::<u8>::new()
    );
}

#[test]
fn descriptions_out_of_bounds_are_refused() {
    let cipher = AttachmentCipher::generate(10, CHUNK, &mut OsRng).expect("layout");
    let good = AttachmentRef {
        cipher,
        ciphertext_sha256: [0; 32],
        kind: MediaKind::Image,
        mime: "image/jpeg".into(),
        name: "photo.jpg".into(),
        dimensions: Some(Dimensions {
            width: 1,
            height: 1,
        }),
        thumbnail: vec![1, 2, 3],
        thumbnail_mime: "image/jpeg".into(),
    };
    assert_eq!(
        AttachmentRef::from_bytes(&good.to_bytes()),
        Ok(good.clone())
    );
    for name in ["", "..", "a/b", "a\\b", "tab\there"] {
        let bad = AttachmentRef {
            name: name.into(),
            ..good.clone()
        };
        assert!(
            AttachmentRef::from_bytes(&bad.to_bytes()).is_err(),
            "{name:?}"
        );
    }
    let big_thumbnail = AttachmentRef {
        thumbnail: vec![0; MAX_THUMBNAIL_LEN + 1],
        ..good.clone()
    };
    assert!(AttachmentRef::from_bytes(&big_thumbnail.to_bytes()).is_err());
    let svg_thumbnail = AttachmentRef {
        thumbnail_mime: "image/svg+xml".into(),
        ..good.clone()
    };
    assert!(AttachmentRef::from_bytes(&svg_thumbnail.to_bytes()).is_err());
    assert!(ChunkLayout::new(10, MIN_CHUNK_SIZE - 1).is_err());
    let mut truncated = good.to_bytes();
    truncated.pop();
    assert!(AttachmentRef::from_bytes(&truncated).is_err());
    assert_eq!(MediaKind::of_mime("video/mp4"), MediaKind::Video);
    assert_eq!(MediaKind::of_mime("application/pdf"), MediaKind::File);
}
