//! The API's security scheme: a bearer JWT naming the user. A failed check answers 401 in the
//! API's JSON error shape, saying whether the token was expired or not valid.

use std::sync::Arc;

use poem::http::uri::PathAndQuery;
use poem::http::{header, HeaderValue, Method, StatusCode, Uri};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;

use super::error::HttpError;
use crate::auth::AuthError;
use crate::state::AppState;

/// A user's bearer token: an HS256 JWT whose `sub` is the user id (`previewd token --user NAME`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_user")]
pub struct UserAuth(pub String);

async fn check_user(req: &Request, bearer: Bearer) -> poem::Result<String> {
    let state = req.data::<Arc<AppState>>().ok_or_else(|| HttpError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal_error",
        message: "server state missing".into(),
    })?;
    state.auth.verify_user(&bearer.token).map_err(|err| {
        let code = match err {
            AuthError::Expired => "token_expired",
            _ => "invalid_token",
        };
        HttpError {
            status: StatusCode::UNAUTHORIZED,
            code,
            message: err.to_string(),
        }
        .into()
    })
}

/// The query parameter carrying a bearer token where headers cannot be set.
const QUERY_TOKEN: &str = "access_token";

/// Lets a client that cannot set headers (a browser's `EventSource`) send its token as
/// `?access_token=` on the log stream: the token becomes the `Authorization` header (unless one
/// was sent) and leaves the URL, so the request log (which logs the rewritten URL) never holds it and the check is the
/// bearer check, with its exact errors. Other operations take the header only.
pub async fn query_token<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let streaming = req.method() == Method::GET && req.uri().path().ends_with("/logs/stream");
    if streaming {
        if let Some(token) = take_query_param(&mut req, QUERY_TOKEN).pop() {
            if !req.headers().contains_key(header::AUTHORIZATION) {
                if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                    req.headers_mut().insert(header::AUTHORIZATION, value);
                }
            }
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// Takes every `name=` parameter out of the request's URI and returns their values in order
/// (raw, as written); the other parameters keep their order and spelling. For credentials in
/// a query: once taken, nothing downstream (the request log, a proxied app) sees them.
pub fn take_query_param(req: &mut Request, name: &str) -> Vec<String> {
    let Some(query) = req.uri().query() else {
        return Vec::new();
    };
    let (values, rest) = split_query_param(query, name);
    if values.is_empty() {
        return values;
    }
    let path_and_query = match rest.is_empty() {
        true => req.uri().path().to_string(),
        false => format!("{}?{rest}", req.uri().path()),
    };
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.path_and_query = PathAndQuery::from_maybe_shared(path_and_query).ok();
    // The shortened URI is a piece of a valid one; should it fail all the same, the request goes
    // on without a URI rather than with the credential in it.
    *req.uri_mut() = Uri::from_parts(parts).unwrap_or_default();
    values
}

/// Splits a raw query into the values of `name` and the other parameters. Only the literal
/// name counts (not one merely ending in it).
fn split_query_param(query: &str, name: &str) -> (Vec<String>, String) {
    let mut values = Vec::new();
    let mut rest: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=').unwrap_or((pair, "")) {
            (key, value) if key == name => values.push(value.to_string()),
            _ => rest.push(pair),
        }
    }
    (values, rest.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `token=` leaves the query, values in order; other parameters keep their order and
    /// spelling (a parameter merely ending in `token` is not it).
    #[test]
    fn query_param_is_cut_out() {
        assert_eq!(
            split_query_param("a=1&token=T1&b=%20x&token=T2&mytoken=3&c", "token"),
            (
                vec!["T1".to_string(), "T2".to_string()],
                "a=1&b=%20x&mytoken=3&c".to_string()
            )
        );
        assert_eq!(
            split_query_param("token=T", "token"),
            (vec!["T".to_string()], String::new())
        );
        assert_eq!(
            split_query_param("a=1", "token"),
            (vec![], "a=1".to_string())
        );
    }

    /// The rewritten URI keeps the path and the other parameters.
    #[test]
    fn take_query_param_rewrites_the_uri() {
        let mut req = Request::builder()
            .uri_str("/api/v1/x/logs/stream?after=3&access_token=A&tail=1")
            .finish();
        assert_eq!(take_query_param(&mut req, "access_token"), ["A"]);
        assert_eq!(
            req.uri().to_string(),
            "/api/v1/x/logs/stream?after=3&tail=1"
        );
        assert!(take_query_param(&mut req, "access_token").is_empty());
    }
}
