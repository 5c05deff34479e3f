//! The HTTP server. [`run`] takes a listener the caller bound and a shutdown future the caller
//! owns, so tests bind port 0 and stop the server when they are done; when the future resolves,
//! every running preview is stopped before the server returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use poem::http::header::CONTENT_TYPE;
use poem::http::uri::Scheme;
use poem::http::HeaderValue;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Route};
use tracing::Instrument;

use crate::api;
use crate::api::error::HttpError;
use crate::config::Config;
use crate::proxy;
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
    // The proxy forwards bodies as they are: the API's body policy is not for it.
    let api = api
        .into_endpoint()
        .around(move |next, req| body_policy(next, req, max_body));
    let proxy = proxy::Proxy::default();
    let routes = Route::new()
        .at("/api/v1/openapi.json", spec)
        .nest("/docs", docs)
        .at("/preview/:preview_id", proxy.clone())
        .at("/preview/:preview_id/*path", proxy)
        .nest("/", api);
    api::error::json_errors(
        routes
            .around(request_log)
            .around(proxy::auth::hide_query_token)
            .around(api::security::query_token)
            .data(state)
            .into_endpoint(),
    )
}

/// Logs each request in a span of its own: method, URI (as rewritten, so without the credentials
/// [`api::security::query_token`] and [`proxy::auth::hide_query_token`] took out; poem's own
/// `Tracing` would log the original), status and time taken.
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

/// poem's TCP acceptor with `TCP_NODELAY` on every connection. A streamed answer (the proxy's,
/// a log stream) is written as its head and then its body as it comes; with Nagle's algorithm
/// the body would wait for the client to acknowledge the head, which a client delaying its
/// ACKs does only after 40 ms.
struct NoDelay(TcpAcceptor);

impl Acceptor for NoDelay {
    type Io = tokio::net::TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, local, remote, scheme) = self.0.accept().await?;
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!("setting TCP_NODELAY: {err}");
        }
        Ok((stream, local, remote, scheme))
    }
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
    let acceptor = NoDelay(TcpAcceptor::from_tokio(listener)?);
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
