#![allow(clippy::unwrap_used)]

//! TOTP codes without a server: the design team's vectors, RFC 6238 appendix B, the window
//! of one step either side, and refusing a step that was already used.

use mfa::totp::{code_at, matching_step, TotpSecret, STEP_SECONDS};
use totp_rs::Secret;

/// The vectors shipped in `tests/vectors/totp.json`.
#[derive(serde::Deserialize)]
struct VectorFile {
    algorithm: String,
    vectors: Vec<Vector>,
}

#[derive(serde::Deserialize)]
struct Vector {
    secret_base32: String,
    unix_time: u64,
    step_s: u64,
    digits: usize,
    algorithm: String,
    code: String,
}

/// The secret RFC 6238 appendix B uses for SHA-1: the ASCII digits "1234567890" twice.
const RFC_SECRET: &[u8] = b"12345678901234567890";

fn secret_bytes(base32: &str) -> Vec<u8> {
    Secret::Encoded(base32.to_owned()).to_bytes().unwrap()
}

#[test]
fn every_vector_of_the_design_team_matches() {
    let file: VectorFile = serde_json::from_str(include_str!("vectors/totp.json")).unwrap();
    assert!(file.algorithm.contains("RFC 6238"), "{}", file.algorithm);
    assert!(file.vectors.len() >= 12);
    for vector in &file.vectors {
        assert_eq!(vector.algorithm, "SHA1");
        let code = code_at(
            &secret_bytes(&vector.secret_base32),
            vector.digits,
            vector.step_s,
            vector.unix_time,
        )
        .unwrap();
        assert_eq!(
            code, vector.code,
            "{} at {}",
            vector.secret_base32, vector.unix_time
        );
    }
}

#[test]
fn the_sha1_vectors_of_rfc_6238_appendix_b_match() {
    let vectors = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];
    for (time, expected) in vectors {
        assert_eq!(
            code_at(RFC_SECRET, 8, 30, time).unwrap(),
            expected,
            "{time}"
        );
    }
}

#[test]
fn invalid_parameters_are_errors() {
    assert!(code_at(RFC_SECRET, 5, 30, 59).is_err());
    assert!(code_at(RFC_SECRET, 9, 30, 59).is_err());
    assert!(code_at(b"too short", 6, 30, 59).is_err());
    assert!(code_at(RFC_SECRET, 6, 0, 59).is_err());
}

fn rfc_secret() -> TotpSecret {
    TotpSecret::from_bytes(RFC_SECRET.try_into().unwrap())
}

#[test]
fn the_server_secret_computes_the_six_digit_codes_of_the_rfc_secret() {
    let secret = rfc_secret();
    // The last six digits of the appendix B codes.
    assert_eq!(secret.code_for_step(59 / 30).as_str(), "287082");
    assert_eq!(secret.code_for_step(1_234_567_890 / 30).as_str(), "005924");
    assert_eq!(secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}

#[test]
fn codes_one_step_early_or_late_are_accepted_and_two_steps_are_not() {
    let secret = rfc_secret();
    let now = 1_700_000_015;
    let current = now / STEP_SECONDS;
    for offset in [-1i64, 0, 1] {
        let step = current.saturating_add_signed(offset);
        let code = secret.code_for_step(step);
        assert_eq!(
            matching_step(&secret, &code, now, 0),
            Some(step),
            "offset {offset}"
        );
    }
    for offset in [-2i64, 2] {
        let code = secret.code_for_step(current.saturating_add_signed(offset));
        assert_eq!(
            matching_step(&secret, &code, now, 0),
            None,
            "offset {offset}"
        );
    }
    // The edges of the current step itself: its first and last second.
    let first_second = current * STEP_SECONDS;
    let last_second = first_second + STEP_SECONDS - 1;
    let late = secret.code_for_step(current - 1);
    assert_eq!(
        matching_step(&secret, &late, last_second, 0),
        Some(current - 1)
    );
    let early = secret.code_for_step(current + 1);
    assert_eq!(
        matching_step(&secret, &early, first_second, 0),
        Some(current + 1)
    );
    assert_eq!(matching_step(&secret, &early, first_second - 1, 0), None);
}

#[test]
fn a_used_step_is_refused_and_later_ones_still_work() {
    let secret = rfc_secret();
    let now = 1_700_000_015;
    let current = now / STEP_SECONDS;
    let code = secret.code_for_step(current);
    let used = matching_step(&secret, &code, now, 0).unwrap();
    assert_eq!(matching_step(&secret, &code, now, used), None, "replay");
    let earlier = secret.code_for_step(current - 1);
    assert_eq!(
        matching_step(&secret, &earlier, now, used),
        None,
        "an older code"
    );
    let later = secret.code_for_step(current + 1);
    assert_eq!(matching_step(&secret, &later, now, used), Some(current + 1));
}

#[test]
fn malformed_codes_never_match() {
    let secret = rfc_secret();
    let now = 1_700_000_015;
    let code = secret.code_for_step(now / STEP_SECONDS);
    for typed in [
        "",
        "12345",
        "1234567",
        "abcdef",
        &format!("{}0", code.as_str()),
    ] {
        assert_eq!(matching_step(&secret, typed, now, 0), None, "{typed:?}");
    }
    // Surrounding spaces are forgiven.
    assert!(matching_step(&secret, &format!(" {} ", code.as_str()), now, 0).is_some());
}
