//! Passkeys in the browser: the WebAuthn ceremonies (W3C Web Authentication, sections 5.1.3
//! and 5.1.4) through `navigator.credentials.create()` and `.get()`. The server's options
//! and the browser's answers travel as WebAuthn's JSON forms (Level 3:
//! `PublicKeyCredential.parseCreationOptionsFromJSON()`, `.parseRequestOptionsFromJSON()`
//! and `PublicKeyCredential.prototype.toJSON()`), so this client never decodes them: the
//! browser does, and the server checks the answers with webauthn-rs.
//!
//! Browsers allow passkeys only on a secure origin named by a domain: `https://…`, or
//! `http://localhost` for development; never an IP address such as `http://127.0.0.1`.
//! The JSON methods are in Chromium 129, Firefox 119 and Safari 18.4 and later; an older
//! browser is told that it cannot use passkeys here.

use common::api::WebAuthnJson;

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

/// The browser's WebAuthn JSON methods, which web-sys does not bind yet.
#[cfg(target_family = "wasm")]
mod json_methods {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        /// `PublicKeyCredential.parseCreationOptionsFromJSON(options)`.
        #[wasm_bindgen(catch, js_namespace = PublicKeyCredential, js_name = parseCreationOptionsFromJSON)]
        pub fn parse_creation_options(options: &JsValue) -> Result<JsValue, JsValue>;

        /// `PublicKeyCredential.parseRequestOptionsFromJSON(options)`.
        #[wasm_bindgen(catch, js_namespace = PublicKeyCredential, js_name = parseRequestOptionsFromJSON)]
        pub fn parse_request_options(options: &JsValue) -> Result<JsValue, JsValue>;
    }
}

/// The words for a browser without WebAuthn's JSON methods (see [`supported`]).
pub fn too_old() -> ChatError {
    ChatError::Other(
        "this browser cannot use passkeys here: it needs Chromium 129, Firefox 119, \
         Safari 18.4 or later"
            .into(),
    )
}

/// Whether the browser has what the ceremonies need: `PublicKeyCredential` with
/// `parseCreationOptionsFromJSON`, `parseRequestOptionsFromJSON` and `prototype.toJSON`.
#[cfg(target_family = "wasm")]
pub fn supported() -> bool {
    let global = js_sys::global();
    let Ok(class) = js_sys::Reflect::get(&global, &"PublicKeyCredential".into()) else {
        return false;
    };
    let is_function = |target: &wasm_bindgen::JsValue, name: &str| {
        js_sys::Reflect::get(target, &name.into()).is_ok_and(|value| value.is_function())
    };
    let prototype = js_sys::Reflect::get(&class, &"prototype".into()).unwrap_or_default();
    is_function(&class, "parseCreationOptionsFromJSON")
        && is_function(&class, "parseRequestOptionsFromJSON")
        && is_function(&prototype, "toJSON")
}

/// Outside a browser there are no passkeys.
#[cfg(not(target_family = "wasm"))]
pub fn supported() -> bool {
    false
}

/// `{ publicKey: parse(server.publicKey) }`: the argument of `navigator.credentials.create()`
/// or `.get()` for the server's `CreationChallengeResponse` or `RequestChallengeResponse`.
#[cfg(target_family = "wasm")]
fn ceremony_options(
    server: &WebAuthnJson,
    parse: fn(&wasm_bindgen::JsValue) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue>,
) -> Result<js_sys::Object, ChatError> {
    let unreadable = |_| ChatError::Other("the server's passkey options are unreadable".into());
    let server = js_sys::JSON::parse(server.as_json()).map_err(unreadable)?;
    let public_key = js_sys::Reflect::get(&server, &"publicKey".into()).map_err(unreadable)?;
    if !public_key.is_object() {
        return Err(unreadable(public_key));
    }
    // The browser refuses options it cannot read with a TypeError or an EncodingError; other
    // refusals (a SecurityError for this origin, say) are the ceremony's.
    let parsed = parse(&public_key).map_err(|error| {
        use wasm_bindgen::JsCast as _;
        let encoding = error
            .dyn_ref::<web_sys::DomException>()
            .is_some_and(|exception| exception.name() == "EncodingError");
        if encoding || error.is_instance_of::<js_sys::TypeError>() {
            unreadable(error)
        } else {
            failure(error)
        }
    })?;
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"publicKey".into(), &parsed).map_err(unreadable)?;
    Ok(options)
}

/// The browser's answer in its JSON form, for the server.
#[cfg(target_family = "wasm")]
fn answer_json(credential: &web_sys::PublicKeyCredential) -> Result<WebAuthnJson, ChatError> {
    use wasm_bindgen::JsCast as _;
    let unreadable = |_| ChatError::Other("the browser's passkey answer is unreadable".into());
    // `credential.toJSON()` ([`supported`] checked that it is there).
    let to_json: js_sys::Function = js_sys::Reflect::get(credential, &"toJSON".into())
        .ok()
        .and_then(|method| method.dyn_into().ok())
        .ok_or_else(too_old)?;
    let object = to_json.call0(credential).map_err(unreadable)?;
    let text = js_sys::JSON::stringify(&object)
        .map_err(unreadable)?
        .as_string()
        .ok_or_else(|| unreadable(object.clone()))?;
    WebAuthnJson::from_json(text).map_err(|_| unreadable(object))
}

/// One ceremony: the server's options made the browser's (`parse`), the browser asked
/// (`ask`: `create` or `get` of the credentials container), its answer in JSON form.
#[cfg(target_family = "wasm")]
async fn ceremony(
    server: &WebAuthnJson,
    parse: fn(&wasm_bindgen::JsValue) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue>,
    ask: fn(
        &web_sys::CredentialsContainer,
        &js_sys::Object,
    ) -> Result<js_sys::Promise, wasm_bindgen::JsValue>,
) -> Result<WebAuthnJson, ChatError> {
    if !supported() {
        return Err(too_old());
    }
    let options = ceremony_options(server, parse)?;
    let promise = ask(&credentials()?, &options).map_err(failure)?;
    answer_json(&credential_of(promise).await?)
}

/// Asks the browser to create a passkey for `options` (from `POST /api/passkeys/begin`).
///
/// # Errors
/// [`ChatError::Other`] saying why the browser refused or the user cancelled.
#[cfg(target_family = "wasm")]
pub async fn create(options: &WebAuthnJson) -> Result<WebAuthnJson, ChatError> {
    use wasm_bindgen::JsCast as _;
    ceremony(
        options,
        json_methods::parse_creation_options,
        |container, options| container.create_with_options(options.unchecked_ref()),
    )
    .await
}

/// Asks the browser for an assertion of one of the passkeys `options` allows (from the
/// login's `passkey_options`).
///
/// # Errors
/// [`ChatError::Other`] saying why the browser refused or the user cancelled.
#[cfg(target_family = "wasm")]
pub async fn get(options: &WebAuthnJson) -> Result<WebAuthnJson, ChatError> {
    use wasm_bindgen::JsCast as _;
    ceremony(
        options,
        json_methods::parse_request_options,
        |container, options| container.get_with_options(options.unchecked_ref()),
    )
    .await
}

/// Outside a browser there are no passkeys.
///
/// # Errors
/// Always.
#[cfg(not(target_family = "wasm"))]
pub async fn create(_options: &WebAuthnJson) -> Result<WebAuthnJson, ChatError> {
    Err(ChatError::Other("passkeys need a browser".into()))
}

/// Outside a browser there are no passkeys.
///
/// # Errors
/// Always.
#[cfg(not(target_family = "wasm"))]
pub async fn get(_options: &WebAuthnJson) -> Result<WebAuthnJson, ChatError> {
    Err(ChatError::Other("passkeys need a browser".into()))
}
