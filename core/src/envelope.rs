//! The envelope request: a JSON description of an HTTP request, sent to one preview's own port,
//! answered by a JSON description of the response.
//!
//! It is built so that it can only ever reach `127.0.0.1:<the preview's port>`: the caller gives
//! a path, never a URL, and anything that could make the URL parser read a scheme, a host, user
//! info or another port (`//`, `\`, `@`, `:` before the first `/`...) is refused before a URL is
//! built, and the built URL is checked again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::StreamExt;

/// Headers that belong to one connection and are never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// A request to send.
#[derive(Debug, Clone, Default)]
pub struct EnvelopeRequest {
    pub method: String,
    /// Path (and optionally `?query`) on the preview, starting with `/`.
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub body_base64: Option<String>,
}

/// The answer.
#[derive(Debug, Clone)]
pub struct EnvelopeResponse {
    pub status: u16,
    /// Header names in lower case; repeated headers joined with `, ` (`set-cookie` with `\n`).
    pub headers: BTreeMap<String, String>,
    /// The body when it is UTF-8 text.
    pub body: Option<String>,
    /// The body when it is not text.
    pub body_base64: Option<String>,
    pub elapsed_ms: f64,
}

/// Why an envelope request failed.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("`{path}` is not allowed: {why}")]
    InvalidPath { path: String, why: &'static str },
    #[error("`{0}` is not an HTTP method")]
    InvalidMethod(String),
    #[error("header `{0}` is not valid")]
    InvalidHeader(String),
    #[error("body_base64 is not valid base64: {0}")]
    InvalidBase64(String),
    #[error("give either body or body_base64, not both")]
    TwoBodies,
    #[error("the request body is larger than {0} bytes")]
    RequestTooLarge(usize),
    #[error("the preview's response is larger than {0} bytes")]
    ResponseTooLarge(usize),
    #[error("the preview refused the connection on port {0}; is it running?")]
    Refused(u16),
    #[error("the preview did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the request to the preview failed: {0}")]
    Upstream(String),
}

impl EnvelopeError {
    /// The HTTP status the API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            EnvelopeError::RequestTooLarge(_) => 413,
            EnvelopeError::Refused(_)
            | EnvelopeError::ResponseTooLarge(_)
            | EnvelopeError::Upstream(_) => 502,
            EnvelopeError::Timeout(_) => 504,
            _ => 400,
        }
    }

    /// The snake_case code of the JSON error.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::InvalidPath { .. } => "invalid_path",
            EnvelopeError::InvalidMethod(_) => "invalid_method",
            EnvelopeError::InvalidHeader(_) => "invalid_header",
            EnvelopeError::InvalidBase64(_) => "invalid_base64",
            EnvelopeError::TwoBodies => "two_bodies",
            EnvelopeError::RequestTooLarge(_) => "request_too_large",
            EnvelopeError::ResponseTooLarge(_) => "response_too_large",
            EnvelopeError::Refused(_) => "preview_unreachable",
            EnvelopeError::Timeout(_) => "preview_timeout",
            EnvelopeError::Upstream(_) => "preview_error",
        }
    }
}

/// Sends envelope requests.
#[derive(Debug, Clone)]
pub struct Envelope {
    client: reqwest::Client,
    timeout: Duration,
    max_request_bytes: usize,
    max_response_bytes: usize,
}

impl Envelope {
    /// An envelope sender with a per-request `timeout` and body size limits.
    pub fn new(timeout: Duration, max_request_bytes: usize, max_response_bytes: usize) -> Envelope {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_default();
        Envelope {
            client,
            timeout,
            max_request_bytes,
            max_response_bytes,
        }
    }

    /// Sends `request` to `127.0.0.1:port`.
    pub async fn send(
        &self,
        port: u16,
        request: &EnvelopeRequest,
    ) -> Result<EnvelopeResponse, EnvelopeError> {
        let url = target_url(port, &request.path, &request.query)?;
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| EnvelopeError::InvalidMethod(request.method.clone()))?;
        let body = match (&request.body, &request.body_base64) {
            (Some(_), Some(_)) => return Err(EnvelopeError::TwoBodies),
            (Some(text), None) => text.clone().into_bytes(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| EnvelopeError::InvalidBase64(e.to_string()))?,
            (None, None) => Vec::new(),
        };
        if body.len() > self.max_request_bytes {
            return Err(EnvelopeError::RequestTooLarge(self.max_request_bytes));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &request.headers {
            if HOP_BY_HOP.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| EnvelopeError::InvalidHeader(name.clone()))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| EnvelopeError::InvalidHeader(name.to_string()))?;
            headers.append(name, value);
        }

        let started = Instant::now();
        let exchange = async {
            let response = self
                .client
                .request(method, url)
                .headers(headers)
                .body(body)
                .send()
                .await
                .map_err(|e| classify(e, port))?;
            let status = response.status().as_u16();
            let mut out_headers: BTreeMap<String, String> = BTreeMap::new();
            for (name, value) in response.headers() {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                let joiner = if name == reqwest::header::SET_COOKIE {
                    "\n"
                } else {
                    ", "
                };
                out_headers
                    .entry(name.as_str().to_string())
                    .and_modify(|v| {
                        v.push_str(joiner);
                        v.push_str(&value);
                    })
                    .or_insert(value);
            }
            let mut bytes = Vec::new();
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| classify(e, port))?;
                if bytes.len() + chunk.len() > self.max_response_bytes {
                    return Err(EnvelopeError::ResponseTooLarge(self.max_response_bytes));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok((status, out_headers, bytes))
        };
        let (status, headers, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| EnvelopeError::Timeout(self.timeout))??;
        let (body, body_base64) = match String::from_utf8(bytes) {
            Ok(text) => (Some(text), None),
            Err(err) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(err.as_bytes())),
            ),
        };
        Ok(EnvelopeResponse {
            status,
            headers,
            body,
            body_base64,
            elapsed_ms: (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        })
    }
}

fn classify(err: reqwest::Error, port: u16) -> EnvelopeError {
    if err.is_connect() {
        EnvelopeError::Refused(port)
    } else {
        EnvelopeError::Upstream(err.to_string())
    }
}

/// The URL for `path` on `127.0.0.1:port`, refusing anything that is not a plain path.
pub fn target_url(
    port: u16,
    path: &str,
    query: &BTreeMap<String, String>,
) -> Result<reqwest::Url, EnvelopeError> {
    let refuse = |why| EnvelopeError::InvalidPath {
        path: path.to_string(),
        why,
    };
    if !path.starts_with('/') {
        return Err(refuse("it must be a path starting with `/`, not a URL"));
    }
    if path.starts_with("//") {
        return Err(refuse("`//` would name another host"));
    }
    if path.contains('\\') {
        return Err(refuse("backslashes are not allowed"));
    }
    if path.contains('@') {
        return Err(refuse("`@` is not allowed"));
    }
    if path.contains('#') {
        return Err(refuse("a fragment (`#`) is not sent to servers"));
    }
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(refuse(
            "control characters and spaces must be percent-encoded",
        ));
    }
    let mut url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}{path}"))
        .map_err(|_| refuse("it is not a valid path"))?;
    if url.host_str() != Some("127.0.0.1") || url.port() != Some(port) || !url.username().is_empty()
    {
        return Err(refuse("it would leave the preview"));
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(path: &str) -> Result<String, EnvelopeError> {
        target_url(3001, path, &BTreeMap::new()).map(|u| u.to_string())
    }

    /// Plain paths and queries reach the preview's own port.
    #[test]
    fn plain_paths() {
        assert_eq!(
            url("/items/1?x=2").unwrap(),
            "http://127.0.0.1:3001/items/1?x=2"
        );
        let query = BTreeMap::from([("q".to_string(), "a b&c".to_string())]);
        assert_eq!(
            target_url(3001, "/search", &query).unwrap().as_str(),
            "http://127.0.0.1:3001/search?q=a+b%26c"
        );
        // Dot segments are resolved by the URL parser and stay on the same host.
        assert_eq!(url("/a/../../b").unwrap(), "http://127.0.0.1:3001/b");
    }

    /// Every attempt to name another host, port or scheme is refused.
    #[test]
    fn ssrf_attempts() {
        for path in [
            "http://169.254.169.254/latest",
            "//evil.example/x",
            "/\\evil.example",
            "@evil.example/x",
            "/x@evil.example",
            ":8080/admin",
            "evil.example/x",
            "",
            "/a b",
            "/a\r\nHost: x",
            "/#frag",
        ] {
            assert!(url(path).is_err(), "{path:?} must be refused");
        }
    }

    /// A port nobody listens on is a 502 that says so, not a hang or a 500.
    #[tokio::test]
    async fn refused_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let envelope = Envelope::new(Duration::from_secs(5), 1024, 1024);
        let request = EnvelopeRequest {
            method: "GET".into(),
            path: "/".into(),
            ..EnvelopeRequest::default()
        };
        let err = envelope.send(port, &request).await.unwrap_err();
        assert!(
            matches!(err, EnvelopeError::Refused(p) if p == port),
            "{err}"
        );
        assert_eq!(
            (err.http_status(), err.code()),
            (502, "preview_unreachable")
        );
    }
}
