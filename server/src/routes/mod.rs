//! The HTTP routes, one module per resource, each with a `router()` to merge.
//!
//! Every route is registered with [`EndpointRouter::endpoint`] under the method and path of
//! its definition in [`common::api::endpoints`], and its handler takes [`Request<E>`] and
//! answers [`Reply<E>`] of the same definition, so the server cannot drift from the clients
//! or from `docs/openapi.json`.

use axum::handler::Handler;
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use common::api::endpoints::{Endpoint, Method};

use crate::extract::ApiJson;

pub mod account;
pub mod accounts;
pub mod attachments;
pub mod client_state;
pub mod health;
pub mod join_requests;
pub mod login;
pub mod messages;
pub mod openapi;
pub mod passkeys;
pub mod rooms;
pub mod sessions;
pub mod totp;
pub mod ws;

/// The JSON request body of endpoint `E` (see [`ApiJson`] for its refusals).
pub type Request<E> = ApiJson<<E as Endpoint>::Request>;

/// The JSON body of a successful answer of endpoint `E`.
pub type Reply<E> = Json<<E as Endpoint>::Response>;

/// Registers handlers under their endpoint's definition.
pub trait EndpointRouter<S> {
    /// Routes `E`'s method and path to `handler` (a path may carry several endpoints, one
    /// per method).
    fn endpoint<E: Endpoint, H: Handler<T, S>, T: 'static>(self, endpoint: E, handler: H) -> Self;
}

impl<S: Clone + Send + Sync + 'static> EndpointRouter<S> for Router<S> {
    fn endpoint<E: Endpoint, H: Handler<T, S>, T: 'static>(self, _: E, handler: H) -> Self {
        let filter = match E::INFO.method {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Delete => MethodFilter::DELETE,
        };
        self.route(E::INFO.path, on(filter, handler))
    }
}
