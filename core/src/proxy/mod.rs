//! The transparent reverse proxy: `/preview/{preview_id}/...` on previewd is the app itself,
//! for a browser, an iframe, `curl` or the app's own Swagger UI.
//!
//! It exists because the envelope (`POST .../preview/request`) is for programs: one request
//! described in JSON, both bodies buffered and size-limited. A page with its scripts and
//! styles, a form posting a file, a 100 MB download, an event stream or a WebSocket needs the
//! real exchange, which this module forwards unchanged but for what a proxy must change:
//!
//! 1. `/preview/<id>` without the slash is redirected (308, query kept) to `/preview/<id>/`, so
//!    that the app's relative links resolve under the prefix.
//! 2. The session token of the launch is required ([`auth`]): missing, malformed, expired or
//!    another preview's is 401. The preview must exist (404) and be running (503
//!    `preview_not_running`, with its status). Every request counts as use for the idle timeout.
//! 3. The request goes to `127.0.0.1:<port>` with the prefix stripped from its path and the
//!    rest of the path and query exactly as sent (not decoded, not normalised), every method,
//!    the end-to-end headers (`Host` and the app's own `Authorization` included), and the body
//!    streamed as it arrives. [`headers`] says what changes: hop-by-hop headers go and
//!    `X-Forwarded-For/-Proto/-Host/-Prefix` are set. The
//!    prefix header is how apps work under `/preview/<id>/`: previewd's Python runtimes turn it
//!    into the ASGI `root_path` (FastAPI) or the WSGI `SCRIPT_NAME` (Flask, Django) of that
//!    request, so the URLs they build (Swagger UI's `openapi.json`, `url_for`, `reverse`)
//!    carry it; Express apps get the headers to use as they like.
//! 4. The answer comes back streamed too, hop-by-hop headers removed, with the session cookie
//!    added when the token came as `?token=`. No previewd limit applies to either body.
//! 5. Failures are JSON in the API's error shape: 502 `preview_unreachable` (connection
//!    refused) or `preview_error` (the app broke the exchange), 504 `preview_timeout` when
//!    the app neither answers nor reads the body for `request_timeout` ([`timeout`]).
//! 6. Protocol switches (WebSocket) pass through ([`upgrade`]).
//!
//! Requests go over a pool of keep-alive HTTP/1.1 connections per app (hyper), so a proxied
//! request costs a loopback round trip and no connection set-up.
//!
//! # Layout
//! - [`auth`]: the session token from header, query or cookie, hidden from the app and the log.
//! - [`headers`]: hop-by-hop removal, `Host` and the forwarded headers.
//! - [`timeout`]: the request body that reports progress, and the wait for the answer.
//! - [`upgrade`]: WebSocket (any protocol switch) passthrough.

pub mod auth;
pub mod headers;
pub mod timeout;
pub mod upgrade;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use poem::http::header::{HOST, LOCATION, SET_COOKIE};
use poem::http::{HeaderValue, StatusCode, Uri, Version};
use poem::{Body, Endpoint, Request, Response, ResponseParts};

use crate::api::error::HttpError;
use crate::auth::AuthError;
use crate::state::AppState;
use crate::store::PreviewStatus;
use crate::supervisor::activity::Activity;
use auth::{QueryToken, TokenSource};

/// Where proxied paths start: `/preview/<id>/...`.
pub const PREFIX: &str = "/preview/";
/// How long an idle pooled connection to an app is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// A request body on its way to an app.
type ForwardBody = BoxBody<Bytes, io::Error>;

/// Why a request was not forwarded, or got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(
        "this preview needs its session token: the `X-Preview-Session` header, `?token=` \
         (which sets a cookie for the next requests) or that cookie"
    )]
    MissingToken,
    #[error("{0}")]
    BadToken(AuthError),
    #[error("no preview with id {0}")]
    NotFound(String),
    #[error("preview {id} is not running (its status is {status}); launch it to use it")]
    NotRunning { id: String, status: &'static str },
    #[error("`{0}` is not a path previewd can forward")]
    BadPath(String),
    #[error("the preview refused the connection on port {0}; is it still running?")]
    Refused(u16),
    #[error("the preview did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the request to the preview failed: {0}")]
    Upstream(String),
    #[error("reading the preview's state failed; see the server's log")]
    Internal,
}

impl ProxyError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::MissingToken | ProxyError::BadToken(_) => StatusCode::UNAUTHORIZED,
            ProxyError::NotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::NotRunning { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::BadPath(_) => StatusCode::BAD_REQUEST,
            ProxyError::Refused(_) | ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The snake_case code of the JSON error (the envelope's codes where they mean the same).
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::MissingToken => "missing_session_token",
            ProxyError::BadToken(AuthError::Expired) => "session_expired",
            ProxyError::BadToken(_) => "invalid_session_token",
            ProxyError::NotFound(_) => "preview_not_found",
            ProxyError::NotRunning { .. } => "preview_not_running",
            ProxyError::BadPath(_) => "invalid_path",
            ProxyError::Refused(_) => "preview_unreachable",
            ProxyError::Timeout(_) => "preview_timeout",
            ProxyError::Upstream(_) => "preview_error",
            ProxyError::Internal => "internal_error",
        }
    }
}

impl From<ProxyError> for poem::Error {
    fn from(err: ProxyError) -> poem::Error {
        HttpError {
            status: err.status(),
            code: err.code(),
            message: err.to_string(),
        }
        .into()
    }
}

/// The proxy endpoint, mounted at `/preview/:preview_id` and `/preview/:preview_id/*path`.
/// It finds the [`AppState`] in the request's data. Cheap to clone: clones share one pool.
#[derive(Clone)]
pub struct Proxy {
    client: Client<HttpConnector, timeout::Tracked<ForwardBody>>,
}

impl Default for Proxy {
    fn default() -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        Proxy { client }
    }
}

impl Proxy {
    /// Sends `request` (its URI already on `127.0.0.1:port`) and waits for the answer's head,
    /// giving up after `timeout` without progress.
    pub async fn send(
        &self,
        port: u16,
        request: hyper::Request<ForwardBody>,
        timeout: Duration,
    ) -> Result<hyper::Response<Incoming>, ProxyError> {
        let progress = Arc::new(Activity::default());
        let request = request.map(|body| timeout::Tracked::new(body, progress.clone()));
        match timeout::unless_stalled(self.client.request(request), &progress, timeout).await {
            None => Err(ProxyError::Timeout(timeout)),
            Some(Ok(response)) => Ok(response),
            Some(Err(err)) if err.is_connect() => Err(ProxyError::Refused(port)),
            Some(Err(err)) => Err(ProxyError::Upstream(describe(&err))),
        }
    }

    /// One request, through the steps the module's doc lists.
    async fn forward(&self, mut req: Request) -> Result<Response, ProxyError> {
        let (preview_id, rest) = split_path(req.uri().path())
            .ok_or_else(|| ProxyError::BadPath(req.uri().path().to_string()))?;
        let (preview_id, rest) = (preview_id.to_string(), rest.map(str::to_string));
        let query_token = req.extensions_mut().remove::<QueryToken>();
        let Some(rest) = rest else {
            return redirect_to_slash(&preview_id, req.uri().query(), query_token);
        };
        let state = req
            .data::<Arc<AppState>>()
            .cloned()
            .ok_or(ProxyError::Internal)?;

        let (token, source) = auth::take_session_token(req.headers_mut(), query_token)
            .ok_or(ProxyError::MissingToken)?;
        state
            .auth
            .verify_session(&token, &preview_id)
            .map_err(ProxyError::BadToken)?;
        let port = running_port(&state, &preview_id)?;
        state.supervisor.touch(&preview_id);

        let client_upgrade = match upgrade::requested(req.headers()) {
            true => req.take_upgrade().ok(),
            false => None,
        };
        let upstream =
            upstream_request(&mut req, port, &preview_id, rest, client_upgrade.is_some())?;
        let mut response = self
            .send(port, upstream, state.config.request_timeout)
            .await?;
        let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switched {
            let client = client_upgrade
                .ok_or_else(|| ProxyError::Upstream("the app switched protocols unasked".into()))?;
            let app = hyper::upgrade::on(&mut response);
            upgrade::splice(client, app, state.supervisor.clone(), preview_id.clone());
        }
        let cookie = match source {
            TokenSource::Query => auth::session_cookie(&preview_id, &token),
            TokenSource::Header | TokenSource::Cookie => None,
        };
        Ok(client_response(response, switched, cookie))
    }
}

/// The request for the app: `rest` (the path after the prefix) and the query on
/// `127.0.0.1:port`, the same method and body, the headers as [`headers`] says.
fn upstream_request(
    req: &mut Request,
    port: u16,
    preview_id: &str,
    rest: String,
    upgrade: bool,
) -> Result<hyper::Request<ForwardBody>, ProxyError> {
    let mut headers = std::mem::take(req.headers_mut());
    let host = headers.get(HOST).cloned().or_else(|| {
        let authority = req.uri().authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    });
    headers::remove_hop_by_hop(&mut headers, upgrade);
    let authority = format!("127.0.0.1:{port}");
    headers::set_forwarded(
        &mut headers,
        &HeaderValue::from_str(&authority).map_err(|_| ProxyError::Internal)?,
        headers::Forwarded {
            client: req.remote_addr().as_socket_addr().map(|addr| addr.ip()),
            proto: req.scheme().as_str(),
            host,
            prefix: &format!("{PREFIX}{preview_id}"),
        },
    );
    let path_and_query = match req.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest,
    };
    let uri = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| ProxyError::BadPath(req.uri().path().to_string()))?;
    let mut upstream = hyper::Request::new(ForwardBody::from(req.take_body()));
    *upstream.method_mut() = req.method().clone();
    *upstream.uri_mut() = uri;
    *upstream.headers_mut() = headers;
    Ok(upstream)
}

/// The app's answer for the client: hop-by-hop headers removed (but for a protocol switch's),
/// the session cookie added when there is one, the body streamed (none after a switch).
fn client_response(
    response: hyper::Response<Incoming>,
    switched: bool,
    cookie: Option<HeaderValue>,
) -> Response {
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers, switched);
    if let Some(cookie) = cookie {
        parts.headers.append(SET_COOKIE, cookie);
    }
    let body = match switched {
        true => Body::empty(),
        false => Body::from(BoxBody::new(body.map_err(io::Error::other))),
    };
    Response::from_parts(
        ResponseParts {
            status: parts.status,
            version: Version::HTTP_11,
            headers: parts.headers,
            extensions: Default::default(),
        },
        body,
    )
}

impl Endpoint for Proxy {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        Ok(self.forward(req).await?)
    }
}

/// `/preview/<id>/<rest>` as the id and `/<rest>` (raw, still percent-encoded); `None` for the
/// rest of `/preview/<id>`.
fn split_path(path: &str) -> Option<(&str, Option<&str>)> {
    let tail = path.strip_prefix(PREFIX)?;
    let (id, rest) = match tail.find('/') {
        Some(slash) => (&tail[..slash], Some(&tail[slash..])),
        None => (tail, None),
    };
    (!id.is_empty()).then_some((id, rest))
}

/// The 308 from `/preview/<id>` to `/preview/<id>/`, with the query as it came (the token
/// included, so the next request sets the cookie).
fn redirect_to_slash(
    preview_id: &str,
    query: Option<&str>,
    token: Option<QueryToken>,
) -> Result<Response, ProxyError> {
    let mut query: Vec<String> = query.into_iter().map(str::to_string).collect();
    if let Some(QueryToken(token)) = token {
        query.push(format!("{}={token}", auth::QUERY_PARAM));
    }
    let mut location = format!("{PREFIX}{preview_id}/");
    if !query.is_empty() {
        location = format!("{location}?{}", query.join("&"));
    }
    let location = HeaderValue::from_str(&location)
        .map_err(|_| ProxyError::BadPath(format!("{PREFIX}{preview_id}")))?;
    Ok(Response::builder()
        .status(StatusCode::PERMANENT_REDIRECT)
        .header(LOCATION, location)
        .finish())
}

/// The port of a running preview, or why there is none.
fn running_port(state: &AppState, preview_id: &str) -> Result<u16, ProxyError> {
    let status = match state.supervisor.upstream(preview_id) {
        Some((port, PreviewStatus::Running)) => return Ok(port),
        Some((_, status)) => status,
        None => match state.store.preview(preview_id) {
            Ok(Some(record)) => record.status,
            Ok(None) => return Err(ProxyError::NotFound(preview_id.to_string())),
            Err(err) => {
                tracing::error!(%preview_id, "reading the preview for the proxy: {err}");
                return Err(ProxyError::Internal);
            }
        },
    };
    Err(ProxyError::NotRunning {
        id: preview_id.to_string(),
        status: status.as_str(),
    })
}

/// An error and its sources, in one line.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The id and the rest of the path, raw; no id is no path.
    #[test]
    fn paths() {
        assert_eq!(split_path("/preview/p1/"), Some(("p1", Some("/"))));
        assert_eq!(
            split_path("/preview/p1/a/%2F/b"),
            Some(("p1", Some("/a/%2F/b")))
        );
        assert_eq!(split_path("/preview/p1//x"), Some(("p1", Some("//x"))));
        assert_eq!(split_path("/preview/p1"), Some(("p1", None)));
        assert_eq!(split_path("/preview//x"), None);
        assert_eq!(split_path("/api/v1"), None);
    }

    /// The redirect keeps the query, with the token put back.
    #[test]
    fn redirect_keeps_the_query() {
        let response = redirect_to_slash("p1", Some("a=1"), Some(QueryToken("T".into()))).unwrap();
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()[LOCATION], "/preview/p1/?a=1&token=T");
        let response = redirect_to_slash("p1", None, None).unwrap();
        assert_eq!(response.headers()[LOCATION], "/preview/p1/");
    }

    fn get(port: u16) -> hyper::Request<ForwardBody> {
        let mut request = hyper::Request::new(ForwardBody::new(
            http_body_util::Empty::new().map_err(|never| match never {}),
        ));
        *request.uri_mut() = format!("http://127.0.0.1:{port}/").parse().unwrap();
        request
    }

    /// A closed port is 502 `preview_unreachable`.
    #[tokio::test]
    async fn refused_is_bad_gateway() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = Proxy::default()
            .send(port, get(port), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (StatusCode::BAD_GATEWAY, "preview_unreachable")
        );
    }

    /// An app that accepts and never answers is 504; one that hangs up is 502 `preview_error`.
    #[tokio::test]
    async fn silence_is_gateway_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            // First connection: read the request, say nothing. Second: hang up at once.
            let (mut silent, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = silent.read(&mut buf).await;
            let (mut rude, _) = listener.accept().await.unwrap();
            let _ = rude.read(&mut buf).await;
            rude.shutdown().await.unwrap();
            drop(rude);
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(silent);
        });
        let proxy = Proxy::default();
        let err = proxy
            .send(port, get(port), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (StatusCode::GATEWAY_TIMEOUT, "preview_timeout")
        );
        let err = proxy
            .send(port, get(port), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (StatusCode::BAD_GATEWAY, "preview_error"),
            "{err}"
        );
    }
}
