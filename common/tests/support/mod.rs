//! What the tests of `common` and `client` share: a counting stand-in for the random
//! generator, the check that every computed worked-example value appears in
//! `docs/PROTOCOL.md`, and a clock and printer for the timing tests (native and in headless
//! Chromium). Included as a module by `common/tests/`, and by path by `client/tests/`.

#![allow(dead_code)]

use rand_core::{CryptoRng, RngCore};

const PROTOCOL_MD: &str = include_str!("../../../docs/PROTOCOL.md");

/// A stand-in for the system RNG that returns `start, start+1, start+2, …` (wrapping), so the
/// examples are reproducible. Never use it outside tests.
pub struct CountingRng(pub u8);

impl RngCore for CountingRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0u8; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }
    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            *byte = self.0;
            self.0 = self.0.wrapping_add(1);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for CountingRng {}

/// `start, start+1, …` as an array: how the document writes fixed inputs (`20..3f`).
pub fn counting<const N: usize>(start: u8) -> [u8; N] {
    let mut out = [0u8; N];
    CountingRng(start).fill_bytes(&mut out);
    out
}

pub struct Examples {
    compact_doc: String,
    printing: bool,
    missing: Vec<String>,
}

impl Examples {
    pub fn new() -> Self {
        let printing = option_env_print();
        Self {
            compact_doc: PROTOCOL_MD.split_whitespace().collect(),
            printing,
            missing: Vec::new(),
        }
    }

    pub fn check(&mut self, name: &str, bytes: &[u8]) {
        self.check_text(name, &hex::encode(bytes));
    }

    pub fn check_text(&mut self, name: &str, value: &str) {
        if self.printing {
            println!("{name} = {value}");
        }
        let compact: String = format!("{name}={value}").split_whitespace().collect();
        if !self.compact_doc.contains(&compact) {
            self.missing.push(format!("{name} = {value}"));
        }
    }

    pub fn finish(self) {
        assert!(
            self.missing.is_empty(),
            "docs/PROTOCOL.md lacks these worked-example values:\n{}",
            self.missing.join("\n")
        );
    }
}

#[cfg(not(target_family = "wasm"))]
fn option_env_print() -> bool {
    std::env::var_os("PRINT_EXAMPLES").is_some()
}

#[cfg(target_family = "wasm")]
fn option_env_print() -> bool {
    false
}

/// Milliseconds from the browser's clock (in Chromium) or the system clock.
#[cfg(target_family = "wasm")]
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Milliseconds from the browser's clock (in Chromium) or the system clock.
#[cfg(not(target_family = "wasm"))]
pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64() * 1000.0)
        .unwrap_or_default()
}

/// Prints a measured figure: to the browser console in Chromium, to standard output natively.
#[cfg(target_family = "wasm")]
pub fn report(text: &str) {
    wasm_bindgen_test::console_log!("{}", text);
}

/// Prints a measured figure: to the browser console in Chromium, to standard output natively.
#[cfg(not(target_family = "wasm"))]
pub fn report(text: &str) {
    println!("{text}");
}
