//! Where the proxy finds a preview's session token, and how it keeps the token away from the app
//! and from the request log.
//!
//! A token is taken from, in this order: the `X-Preview-Session` header (programs), the
//! `?token=` query parameter (a link a person opens, an iframe's `src`), the `previewd_session`
//! cookie (every later request of that browser). A `?token=` that passes the check is answered
//! with that cookie, scoped to the preview's own path and HttpOnly, so the pages, scripts and
//! XHRs the app then loads are authorised without a token in their URLs. The first source
//! present is the one checked: a wrong header is not rescued by a good cookie.
//!
//! None of the three reaches the app: the header is removed, the query parameter is cut out of
//! the URL before the request is even logged ([`hide_query_token`]), and the cookie is cut out
//! of the `Cookie` header while the app's own cookies pass. The app's `Authorization` header is
//! its own and is never touched.

use std::sync::Arc;

use poem::http::header::COOKIE;
use poem::http::{HeaderMap, HeaderName, HeaderValue};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::api::security::take_query_param;

/// The header a program sends the session token in (the envelope's header too).
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("x-preview-session");
/// The query parameter a browser link carries the session token in.
pub const QUERY_PARAM: &str = "token";
/// The cookie the proxy sets from `?token=`.
pub const COOKIE_NAME: &str = "previewd_session";

/// The session token [`hide_query_token`] took out of a proxied request's URL, raw as sent.
#[derive(Debug, Clone)]
pub struct QueryToken(pub String);

/// Where a request's session token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Header,
    Query,
    Cookie,
}

/// Middleware for every request, run before the request log: on a proxied path
/// (`/preview/...`), every `token=` parameter leaves the URL and the first one is kept in the
/// request's data as a [`QueryToken`], so that neither the log nor the app ever sees it.
pub async fn hide_query_token<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    if req.uri().path().starts_with(super::PREFIX) {
        if let Some(token) = take_query_param(&mut req, QUERY_PARAM).into_iter().next() {
            req.extensions_mut().insert(QueryToken(token));
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// The session token of a request and where it came from, removing the header and the cookie
/// from `headers` (both, whichever is used) so that they are not forwarded.
pub fn take_session_token(
    headers: &mut HeaderMap,
    query: Option<QueryToken>,
) -> Option<(String, TokenSource)> {
    let header = headers
        .remove(SESSION_HEADER)
        .and_then(|value| value.to_str().ok().map(str::to_string));
    let cookie = take_cookie(headers);
    match (header, query, cookie) {
        (Some(token), _, _) => Some((token, TokenSource::Header)),
        (None, Some(QueryToken(token)), _) => Some((token, TokenSource::Query)),
        (None, None, Some(token)) => Some((token, TokenSource::Cookie)),
        (None, None, None) => None,
    }
}

/// Removes the session cookie from every `Cookie` header, keeping the other cookies (a header
/// left empty goes), and returns its first value.
fn take_cookie(headers: &mut HeaderMap) -> Option<String> {
    let named = |value: &HeaderValue| value.to_str().is_ok_and(|text| text.contains(COOKIE_NAME));
    if !headers.get_all(COOKIE).iter().any(named) {
        return None;
    }
    let mut token = None;
    let mut kept = Vec::new();
    for value in headers.get_all(COOKIE) {
        let Ok(text) = value.to_str() else {
            kept.push(value.clone());
            continue;
        };
        let mut found = false;
        let mut others = Vec::new();
        for cookie in text.split(';').map(str::trim).filter(|c| !c.is_empty()) {
            match cookie.split_once('=') {
                Some((name, value)) if name.trim() == COOKIE_NAME => {
                    found = true;
                    token.get_or_insert_with(|| value.trim().to_string());
                }
                _ => others.push(cookie),
            }
        }
        if !found {
            kept.push(value.clone());
        } else if let Ok(value) = HeaderValue::from_str(&others.join("; ")) {
            if !others.is_empty() {
                kept.push(value);
            }
        }
    }
    headers.remove(COOKIE);
    for value in kept {
        headers.append(COOKIE, value);
    }
    token
}

/// The `Set-Cookie` value that keeps a browser's session for one preview: only sent back to
/// that preview's own paths, hidden from scripts, and not sent on cross-site subrequests.
pub fn session_cookie(preview_id: &str, token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={token}; Path={}{preview_id}/; HttpOnly; SameSite=Lax",
        super::PREFIX
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header wins over the query and the cookie; header and cookie never stay, the app's
    /// other cookies and its Authorization do.
    #[test]
    fn sources_and_what_is_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_HEADER, HeaderValue::from_static("H"));
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; previewd_session=C; b=2"),
        );
        headers.insert("authorization", HeaderValue::from_static("Bearer app"));
        let token = take_session_token(&mut headers, Some(QueryToken("Q".into())));
        assert_eq!(token, Some(("H".to_string(), TokenSource::Header)));
        assert!(!headers.contains_key(SESSION_HEADER));
        assert_eq!(headers[COOKIE], "a=1; b=2");
        assert_eq!(headers["authorization"], "Bearer app");

        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("previewd_session=C"));
        let token = take_session_token(&mut headers, Some(QueryToken("Q".into())));
        assert_eq!(token, Some(("Q".to_string(), TokenSource::Query)));
        assert!(
            !headers.contains_key(COOKIE),
            "an emptied Cookie header goes"
        );

        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("x=1"));
        headers.append(COOKIE, HeaderValue::from_static("previewd_session=C;y=2"));
        let token = take_session_token(&mut headers, None);
        assert_eq!(token, Some(("C".to_string(), TokenSource::Cookie)));
        let cookies: Vec<_> = headers.get_all(COOKIE).iter().collect();
        assert_eq!(cookies, ["x=1", "y=2"]);

        assert_eq!(take_session_token(&mut HeaderMap::new(), None), None);
    }

    /// On a proxied path the token leaves the URL (what the request log and the app see) and
    /// waits in the request's data; elsewhere nothing changes.
    #[tokio::test]
    async fn token_leaves_the_url_before_the_log() {
        let seen = Arc::new(poem::endpoint::make_sync(|req: Request| {
            let token = req.extensions().get::<QueryToken>().map(|t| t.0.clone());
            format!("{} {}", req.uri(), token.unwrap_or_default())
        }));
        let call = |uri: &'static str| {
            let req = Request::builder()
                .uri(poem::http::Uri::from_static(uri))
                .finish();
            let seen = seen.clone();
            async move {
                let response = hide_query_token(seen, req).await.unwrap();
                response.into_body().into_string().await.unwrap()
            }
        };
        assert_eq!(
            call("/preview/p1/x?a=1&token=T").await,
            "/preview/p1/x?a=1 T"
        );
        assert_eq!(call("/preview/p1/?token=T").await, "/preview/p1/ T");
        assert_eq!(call("/preview/p1/?a=1").await, "/preview/p1/?a=1 ");
        assert_eq!(call("/api/v1/x?token=T").await, "/api/v1/x?token=T ");
    }

    /// The cookie is scoped to the preview's path and kept from scripts.
    #[test]
    fn cookie_attributes() {
        assert_eq!(
            session_cookie("p1", "T").unwrap(),
            "previewd_session=T; Path=/preview/p1/; HttpOnly; SameSite=Lax"
        );
    }
}
