//! Passkeys in the browser: the WebAuthn ceremonies (W3C Web Authentication, sections 5.1.3
//! and 5.1.4) through `navigator.credentials.create()` and `.get()`, with the options the
//! server sent and the answers it expects as webauthn-rs' JSON types; their conversion to
//! and from the browser's objects is webauthn-rs-proto's (`wasm` feature).
//!
//! Browsers allow passkeys only on a secure origin named by a domain: `https://…`, or
//! `http://localhost` for development; never an IP address such as `http://127.0.0.1`.

use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use crate::chat::ChatError;

/// Why a ceremony failed, in words for the page: the browser's `DOMException` name says
/// whether the user cancelled, the page is not allowed, or the passkey is known already.
#[cfg(target_family = "wasm")]
fn failure(error: wasm_bindgen::JsValue) -> ChatError {
    use wasm_bindgen::JsCast as _;
    let name = error
        .dyn_ref::<web_sys::DomException>()
        .map(web_sys::DomException::name)
        .unwrap_or_default();
    let message = match name.as_str() {
        "NotAllowedError" => "the passkey request was cancelled or timed out",
        "InvalidStateError" => "this passkey is registered already",
        "SecurityError" => {
            "passkeys need this page on https:// or http://localhost (not an IP address)"
        }
        "NotSupportedError" => "this browser has no passkey that fits",
        _ => "the browser could not use a passkey",
    };
    ChatError::Other(message.into())
}

/// The browser's credentials container.
#[cfg(target_family = "wasm")]
fn credentials() -> Result<web_sys::CredentialsContainer, ChatError> {
    web_sys::window()
        .map(|window| window.navigator().credentials())
        .ok_or_else(|| ChatError::Other("no browser window".into()))
}

/// The credential a `navigator.credentials` promise resolves to.
#[cfg(target_family = "wasm")]
async fn credential_of(
    promise: js_sys::Promise,
) -> Result<web_sys::PublicKeyCredential, ChatError> {
    use wasm_bindgen::JsCast as _;
    wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(failure)?
        .dyn_into()
        .map_err(|_| ChatError::Other("the browser returned no passkey".into()))
}

/// Asks the browser to create a passkey for `options` (from `POST /api/passkeys/begin`).
///
/// # Errors
/// [`ChatError::Other`] saying why the browser refused or the user cancelled.
#[cfg(target_family = "wasm")]
pub async fn create(
    options: CreationChallengeResponse,
) -> Result<RegisterPublicKeyCredential, ChatError> {
    let options: web_sys::CredentialCreationOptions = options.into();
    let promise = credentials()?
        .create_with_options(&options)
        .map_err(failure)?;
    Ok(RegisterPublicKeyCredential::from(
        credential_of(promise).await?,
    ))
}

/// Asks the browser for an assertion of one of the passkeys `options` allows (from the
/// login's `passkey_options`).
///
/// # Errors
/// [`ChatError::Other`] saying why the browser refused or the user cancelled.
#[cfg(target_family = "wasm")]
pub async fn get(options: RequestChallengeResponse) -> Result<PublicKeyCredential, ChatError> {
    let options: web_sys::CredentialRequestOptions = options.into();
    let promise = credentials()?.get_with_options(&options).map_err(failure)?;
    Ok(PublicKeyCredential::from(credential_of(promise).await?))
}

/// Outside a browser there are no passkeys.
///
/// # Errors
/// Always.
#[cfg(not(target_family = "wasm"))]
pub async fn create(
    _options: CreationChallengeResponse,
) -> Result<RegisterPublicKeyCredential, ChatError> {
    Err(ChatError::Other("passkeys need a browser".into()))
}

/// Outside a browser there are no passkeys.
///
/// # Errors
/// Always.
#[cfg(not(target_family = "wasm"))]
pub async fn get(_options: RequestChallengeResponse) -> Result<PublicKeyCredential, ChatError> {
    Err(ChatError::Other("passkeys need a browser".into()))
}
