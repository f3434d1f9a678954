//! Every vector in `tests/vectors/*.json` (libsodium via PyNaCl, argon2-cffi), natively and
//! in headless Chromium.

use common::primitives;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::Value;

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn vectors(json: &str) -> Vec<Value> {
    let parsed: Value = serde_json::from_str(json).expect("vector file parses");
    let list = parsed["vectors"].as_array().expect("vectors array").clone();
    assert!(!list.is_empty(), "vector file has no vectors");
    list
}

fn hex_field(vector: &Value, name: &str) -> Vec<u8> {
    hex::decode(vector[name].as_str().expect("hex field")).expect("valid hex")
}

fn array_field<const N: usize>(vector: &Value, name: &str) -> [u8; N] {
    hex_field(vector, name).try_into().expect("field length")
}

fn number_field(vector: &Value, name: &str) -> u32 {
    u32::try_from(vector[name].as_u64().expect("number field")).expect("fits u32")
}

#[test]
fn secretbox_vectors() {
    for vector in vectors(include_str!("vectors/secretbox.json")) {
        let key = array_field::<32>(&vector, "key");
        let nonce = array_field::<24>(&vector, "nonce");
        let plaintext = hex_field(&vector, "plaintext");
        let ciphertext = hex_field(&vector, "ciphertext");
        assert_eq!(
            primitives::secretbox_encrypt(&key, &nonce, &plaintext),
            ciphertext
        );
        let opened = primitives::secretbox_decrypt(&key, &nonce, &ciphertext).expect("opens");
        assert_eq!(*opened, plaintext);
        let mut tampered = ciphertext.clone();
        tampered[0] ^= 1;
        assert_eq!(
            primitives::secretbox_decrypt(&key, &nonce, &tampered),
            Err(primitives::PrimitiveError::Decrypt)
        );
    }
}

#[test]
fn box_vectors() {
    for vector in vectors(include_str!("vectors/box.json")) {
        let sender_secret =
            crypto_box::SecretKey::from(array_field::<32>(&vector, "sender_secret"));
        let recipient_secret =
            crypto_box::SecretKey::from(array_field::<32>(&vector, "recipient_secret"));
        let sender_public = array_field::<32>(&vector, "sender_public");
        let recipient_public = array_field::<32>(&vector, "recipient_public");
        assert_eq!(sender_secret.public_key().as_bytes(), &sender_public);
        assert_eq!(recipient_secret.public_key().as_bytes(), &recipient_public);
        let nonce = array_field::<24>(&vector, "nonce");
        let plaintext = hex_field(&vector, "plaintext");
        let ciphertext = hex_field(&vector, "ciphertext");
        let sealed = primitives::box_encrypt(&recipient_public, &sender_secret, &nonce, &plaintext)
            .expect("encrypts");
        assert_eq!(sealed, ciphertext);
        let opened =
            primitives::box_decrypt(&sender_public, &recipient_secret, &nonce, &ciphertext)
                .expect("opens");
        assert_eq!(*opened, plaintext);
    }
}

#[test]
fn sealed_box_vectors() {
    for vector in vectors(include_str!("vectors/sealed_box.json")) {
        let secret = crypto_box::SecretKey::from(array_field::<32>(&vector, "recipient_secret"));
        let public = array_field::<32>(&vector, "recipient_public");
        assert_eq!(secret.public_key().as_bytes(), &public);
        let plaintext = hex_field(&vector, "plaintext");
        let sealed = hex_field(&vector, "sealed");
        assert_eq!(sealed.len(), plaintext.len() + primitives::SEAL_OVERHEAD);
        assert_eq!(
            *primitives::sealed_box_open(&secret, &sealed).expect("opens"),
            plaintext
        );
        // Sealing is randomized, so the round trip is what can be compared.
        let resealed =
            primitives::sealed_box_seal(&public, &plaintext, &mut common::OsRng).expect("seals");
        assert_ne!(resealed, sealed);
        assert_eq!(
            *primitives::sealed_box_open(&secret, &resealed).expect("opens"),
            plaintext
        );
    }
}

#[test]
fn x25519_vectors() {
    for vector in vectors(include_str!("vectors/x25519.json")) {
        let secret = array_field::<32>(&vector, "secret");
        let peer = array_field::<32>(&vector, "peer_public");
        assert_eq!(
            primitives::x25519_public(&secret),
            array_field::<32>(&vector, "public")
        );
        assert_eq!(
            primitives::x25519(&secret, &peer).expect("contributory"),
            array_field::<32>(&vector, "shared")
        );
    }
}

#[test]
fn ed25519_vectors() {
    for vector in vectors(include_str!("vectors/ed25519.json")) {
        let signing_key = SigningKey::from_bytes(&array_field::<32>(&vector, "seed"));
        let public = array_field::<32>(&vector, "public");
        assert_eq!(signing_key.verifying_key().to_bytes(), public);
        let message = hex_field(&vector, "message");
        let signature = hex_field(&vector, "signature");
        assert_eq!(signing_key.sign(&message).to_bytes().to_vec(), signature);
        let verifying_key = common::identity::ed25519_public_key(&public).expect("valid key");
        let parsed = ed25519_dalek::Signature::from_slice(&signature).expect("64 bytes");
        common::identity::verify_signature(&verifying_key, &message, &parsed).expect("verifies");
        let mut other = message.clone();
        other.push(0);
        assert!(common::identity::verify_signature(&verifying_key, &other, &parsed).is_err());
    }
}

#[test]
fn argon2id_vectors() {
    for vector in vectors(include_str!("vectors/argon2id.json")) {
        let mut output = vec![0u8; vector["output_len"].as_u64().expect("len") as usize];
        primitives::argon2id(
            &hex_field(&vector, "password"),
            &hex_field(&vector, "salt"),
            number_field(&vector, "m_cost_kib"),
            number_field(&vector, "t_cost"),
            number_field(&vector, "p_cost"),
            &mut output,
        )
        .expect("argon2id runs");
        assert_eq!(output, hex_field(&vector, "output"));
    }
}

#[test]
fn hkdf_sha256_vectors() {
    for vector in vectors(include_str!("vectors/hkdf_sha256.json")) {
        let mut output = vec![0u8; vector["length"].as_u64().expect("length") as usize];
        primitives::hkdf_sha256(
            &hex_field(&vector, "ikm"),
            &hex_field(&vector, "salt"),
            &hex_field(&vector, "info"),
            &mut output,
        )
        .expect("hkdf runs");
        assert_eq!(output, hex_field(&vector, "okm"));
    }
}
