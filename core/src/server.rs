//! The HTTP server. [`run`] takes a listener the caller bound and a shutdown future the caller
//! owns, so tests bind port 0 and stop the server when they are done; when the future resolves,
//! every running preview is stopped before the server returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use poem::http::header::CONTENT_TYPE;
use poem::http::HeaderValue;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Route};
use tracing::Instrument;

use crate::api;
use crate::api::error::HttpError;
use crate::config::Config;
use crate::state::{AppState, OpenError};

/// How long open connections (log streams) get to finish once previews are stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// The whole HTTP app over `state`.
pub fn app(state: Arc<AppState>) -> impl Endpoint {
    let api = api::service();
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let max_body = state.config.upload_limits().max_request_bytes();
    let routes = Route::new()
        .at("/api/v1/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api);
    api::error::json_errors(
        routes
            .around(move |next, req| body_policy(next, req, max_body))
            .around(request_log)
            .around(api::security::query_token)
            .data(state)
            .into_endpoint(),
    )
}

/// Logs each request in a span of its own: method, URI (as rewritten, so without the credentials
/// [`api::security::query_token`] took out; poem's own `Tracing` logs the original), status and
/// time taken.
async fn request_log<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<poem::Response> {
    let span = tracing::info_span!("request", method = %req.method(), uri = %req.uri());
    async move {
        let started = std::time::Instant::now();
        let result = next.call(req).await.map(IntoResponse::into_response);
        let status = match &result {
            Ok(response) => response.status(),
            Err(err) => err.status(),
        };
        tracing::info!(status = status.as_u16(), elapsed = ?started.elapsed(), "answered");
        result
    }
    .instrument(span)
    .await
}

/// What every request body goes through: a body over `max_body` bytes is refused (413 from its
/// `Content-Length`, or cut off while streaming when it has none), and a request without a body
/// or a Content-Type is read as an empty JSON body, so that `curl -X POST .../launch` works
/// where the body is optional.
async fn body_policy<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    max_body: u64,
) -> poem::Result<poem::Response> {
    let length = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|len| len.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|len| len > max_body) {
        return Err(HttpError {
            status: poem::http::StatusCode::PAYLOAD_TOO_LARGE,
            code: "request_too_large",
            message: format!("the request body is larger than {max_body} bytes"),
        }
        .into());
    }
    let chunked = req
        .headers()
        .get(poem::http::header::TRANSFER_ENCODING)
        .is_some();
    if chunked {
        let mut seen = 0u64;
        let limited = req.take_body().into_bytes_stream().map(move |chunk| {
            let chunk = chunk?;
            seen += chunk.len() as u64;
            if seen > max_body {
                return Err(std::io::Error::other(format!(
                    "the request body is larger than {max_body} bytes"
                )));
            }
            Ok(chunk)
        });
        req.set_body(poem::Body::from_bytes_stream(limited));
    } else if length.unwrap_or(0) == 0 && req.headers().get(CONTENT_TYPE).is_none() {
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    next.call(req).await.map(poem::IntoResponse::into_response)
}

/// Opens the data dir and serves on `listener` until `shutdown` resolves; then stops every
/// preview and returns.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = AppState::open(config).await?;
    serve(listener, state, shutdown).await
}

/// Serves an opened state on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    let addr = acceptor.local_addr().into_iter().next();
    tracing::info!(?addr, "previewd listening");
    let supervisor = state.supervisor.clone();
    let stop_previews = async move {
        shutdown.await;
        tracing::info!("shutting down: stopping every preview");
        supervisor.stop_all("previewd is shutting down").await;
    };
    let store = state.store.clone();
    poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(state), stop_previews, Some(DRAIN_TIMEOUT))
        .await?;
    if let Err(err) = store.flush().await {
        tracing::warn!("flushing the database: {err}");
    }
    Ok(())
}
