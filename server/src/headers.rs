//! Security headers sent on every response, and the Content Security Policy built from the
//! web client's `index.html`.
//!
//! The policy allows scripts only from the server itself, WebAssembly compilation
//! (`'wasm-unsafe-eval'`), and the inline `<script>` elements of `index.html` by their
//! SHA-256 (CSP Level 3 hash sources; the build emits one inline module script that loads the
//! wasm). The build also writes Subresource Integrity attributes on the files it links; the
//! lazily loaded wasm chunks are fetched by the loader script, under `connect-src 'self'`.

use std::path::Path;

use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// `Cross-Origin-Opener-Policy` (not among `http`'s named headers).
pub const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");

/// The security headers, built once at startup and added to every response.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    /// The headers for a web client in `static_dir`, whose `index.html` is read now for its
    /// inline scripts (a missing file gives a policy without hashes).
    pub fn for_static_dir(static_dir: &Path) -> Self {
        let index = std::fs::read_to_string(static_dir.join("index.html")).unwrap_or_default();
        let policy = content_security_policy(&inline_script_hashes(&index));
        // The policy is ASCII built from constants and base64, so it is a valid header.
        let policy = HeaderValue::from_str(&policy)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
        Self {
            headers: vec![
                (CONTENT_SECURITY_POLICY, policy),
                (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
                (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
                (
                    CROSS_ORIGIN_OPENER_POLICY,
                    HeaderValue::from_static("same-origin"),
                ),
            ],
        }
    }

    /// Sets every header on `response`, replacing values a handler may have set.
    pub fn apply(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
        response
    }
}

/// The policy with `script_hashes` (each `'sha256-...'`) allowed as inline scripts:
///
/// `default-src 'self'; script-src 'self' 'wasm-unsafe-eval' <hashes>; style-src 'self';
/// img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none';
/// form-action 'self'; frame-ancestors 'none'`
pub fn content_security_policy(script_hashes: &[String]) -> String {
    let mut script_src = String::from("'self' 'wasm-unsafe-eval'");
    for hash in script_hashes {
        script_src.push(' ');
        script_src.push_str(hash);
    }
    format!(
        "default-src 'self'; script-src {script_src}; style-src 'self'; img-src 'self' data: blob:; \
         media-src 'self' blob:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The CSP hash source (`'sha256-' + base64(SHA-256(content))`) of the content of every
/// inline `<script>` element (one without a `src` attribute) in `html`, in document order.
/// The content is hashed exactly as written between the tags, as browsers do.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    // ASCII lowercasing keeps every byte offset, so positions in `lower` index `html` too.
    let lower = html.to_ascii_lowercase();
    let mut hashes = Vec::new();
    let mut position = 0;
    while let Some(found) = lower[position..].find("<script") {
        let tag_start = position + found;
        let after_name = tag_start + "<script".len();
        // `<scripts>` or `<script-x>` are other elements.
        if !lower[after_name..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace()) {
            position = after_name;
            continue;
        }
        let Some(tag_length) = lower[after_name..].find('>') else {
            break;
        };
        let content_start = after_name + tag_length + 1;
        let Some(content_length) = lower[content_start..].find("</script") else {
            break;
        };
        let content_end = content_start + content_length;
        if !has_src_attribute(&lower[after_name..content_start - 1]) {
            let digest = Sha256::digest(&html.as_bytes()[content_start..content_end]);
            hashes.push(format!("'sha256-{}'", STANDARD.encode(digest)));
        }
        position = content_end;
    }
    hashes
}

/// Whether the attribute text of a tag (lowercase) has a `src` attribute.
fn has_src_attribute(attributes: &str) -> bool {
    attributes
        .split(|c: char| c.is_ascii_whitespace())
        .any(|attribute| attribute == "src" || attribute.starts_with("src="))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(content: &str) -> String {
        format!("'sha256-{}'", STANDARD.encode(Sha256::digest(content)))
    }

    #[test]
    fn inline_scripts_are_hashed_and_external_ones_are_not() {
        let inline = "\nimport init from '/app.js';\nawait init();\n";
        let html = format!(
            "<html><head><script src=\"/x.js\"></script>\
             <SCRIPT type=\"module\">{inline}</SCRIPT>\
             <scripts>not a script</scripts><script>b()</script></head></html>"
        );
        assert_eq!(
            inline_script_hashes(&html),
            vec![hash_of(inline), hash_of("b()")]
        );
        assert!(inline_script_hashes("<p>no scripts</p>").is_empty());
        assert!(inline_script_hashes("<script>unterminated").is_empty());
    }

    #[test]
    fn the_policy_lists_the_hashes_in_script_src() {
        let policy = content_security_policy(&["'sha256-abc='".to_owned()]);
        assert!(policy.starts_with(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'sha256-abc='; "
        ));
        assert!(policy.ends_with("frame-ancestors 'none'"));
        assert!(!content_security_policy(&[]).contains("sha256"));
    }
}
