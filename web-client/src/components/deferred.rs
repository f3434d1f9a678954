//! Parts of the app loaded on first use.
//!
//! [`split_point!`] defines a function that builds a view. With the `split` feature (the
//! release build), it is a wasm-split split point: its code, and the code only it reaches, is
//! moved into a wasm chunk that the page fetches the first time the function is called (see
//! `xtask/src/web_bundle.rs`). Without the feature it is an ordinary `async fn`, so unit tests
//! and debug builds run the same views without chunks. [`deferred`] shows such a view, with a
//! loading line while its chunk arrives and a retry when it could not be fetched.

use std::future::Future;

use leptos::prelude::*;

/// A chunk of the app could not be fetched or instantiated: the connection is down, or the
/// server now serves another build (it answers 404 for the old build's chunks). The browser
/// console has the details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "This part of the app could not be loaded. Check the connection and try again; if the app \
     was updated since this page was opened, reload the page."
)]
pub struct LoadFailed;

impl From<leptos::wasm_split::SplitLoaderError> for LoadFailed {
    fn from(_: leptos::wasm_split::SplitLoaderError) -> Self {
        LoadFailed
    }
}

/// Defines `fn name(args) { view }` as an `async fn name(args) -> Result<AnyView, LoadFailed>`
/// that is a split point in the split build. `preload NAME` also defines
/// `async fn NAME() -> Result<(), SplitLoaderError>` (wasm_split_helpers' error), which fetches
/// the chunk without building the view.
macro_rules! split_point {
    (
        $(#[doc = $doc:literal])*
        $vis:vis fn $name:ident($($arg:ident: $type:ty),* $(,)?) $(preload $preload:ident)? $body:block
    ) => {
        $(#[doc = $doc])*
        #[cfg(feature = "split")]
        #[::leptos::wasm_split::wasm_split(
            $name,
            wasm_split_path = ::leptos::wasm_split,
            fallible,
            $(preload(
                /// Fetches this split point's chunk without building its view.
                $preload
            ))?
        )]
        $vis fn $name($($arg: $type),*) -> Result<AnyView, $crate::components::deferred::LoadFailed> {
            Ok($body)
        }

        $(#[doc = $doc])*
        #[cfg(not(feature = "split"))]
        $vis async fn $name($($arg: $type),*) -> Result<AnyView, $crate::components::deferred::LoadFailed> {
            Ok($body)
        }

        $(
            /// Does nothing: without the `split` feature there is no chunk to fetch.
            #[cfg(not(feature = "split"))]
            $vis async fn $preload() -> Result<(), ::leptos::wasm_split::SplitLoaderError> {
                Ok(())
            }
        )?
    };
}
pub(crate) use split_point;

/// Shows the view `load` produces: a loading line until its chunk has arrived, or the
/// [`LoadFailed`] message with a button that tries again and one that reloads the page.
pub fn deferred<F>(load: impl Fn() -> F + Send + Sync + 'static) -> impl IntoView
where
    F: Future<Output = Result<AnyView, LoadFailed>> + Send + 'static,
{
    let attempt = RwSignal::new(0_u32);
    view! {
        <Suspense fallback=|| view! { <span class="loading" aria-busy="true" data-testid="loading">"Loading…"</span> }>
            {move || {
                attempt.track();
                let view = load();
                Suspend::new(async move {
                    match view.await {
                        Ok(view) => view,
                        Err(error) => view! {
                            <p class="error" role="alert" data-testid="load-error">
                                {error.to_string()}
                                " "
                                <button class="link" data-testid="load-retry" type="button"
                                    on:click=move |_| attempt.update(|count| *count += 1)>
                                    "Try again"
                                </button>
                                " "
                                <button class="link" data-testid="load-reload" type="button"
                                    on:click=|_| {
                                        // Refused only in a sandboxed frame, which this page
                                        // never is (frame-ancestors 'none').
                                        let _ = window().location().reload();
                                    }>
                                    "Reload the page"
                                </button>
                            </p>
                        }
                        .into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
