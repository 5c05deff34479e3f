//! The API's security scheme: a bearer JWT naming the user. A failed check answers 401 in the
//! API's JSON error shape, saying whether the token was expired or not valid.

use std::sync::Arc;

use poem::http::{header, HeaderValue, Method, StatusCode};
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
    if let (true, Some(query)) = (streaming, req.uri().query().map(str::to_owned)) {
        let (tokens, rest): (Vec<&str>, Vec<&str>) = query.split('&').partition(|pair| {
            pair.starts_with(QUERY_TOKEN) && pair[QUERY_TOKEN.len()..].starts_with('=')
        });
        if let Some(token) = tokens.last().map(|pair| &pair[QUERY_TOKEN.len() + 1..]) {
            if !req.headers().contains_key(header::AUTHORIZATION) {
                if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                    req.headers_mut().insert(header::AUTHORIZATION, value);
                }
            }
            let path = req.uri().path();
            let uri = if rest.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", rest.join("&"))
            };
            if let Ok(uri) = uri.parse() {
                *req.uri_mut() = uri;
            }
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}
