//! The API's security schemes: a bearer JWT naming the user, checked here (a failed check
//! answers 401 in the API's JSON error shape, saying whether the token was expired or not
//! valid), and a preview's session token in the `X-Preview-Session` header, which the
//! operations taking it check against their preview.

use std::sync::Arc;

use poem::http::uri::PathAndQuery;
use poem::http::{header, HeaderValue, Method, StatusCode, Uri};
use poem::{Endpoint, IntoResponse, Request, RequestBody, Response};
use poem_openapi::auth::Bearer;
use poem_openapi::registry::{MetaParamIn, MetaSchemaRef, MetaSecurityScheme, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme};

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

/// The header carrying a preview's session token.
pub const SESSION_HEADER: &str = "X-Preview-Session";

/// A preview's session token from the `X-Preview-Session` header, if one was sent: the
/// `session_token` of the launch answer (or of a session renewal), an HS256 JWT valid for one
/// preview until `session_expires_at`.
///
/// In the spec it is both the `X-Preview-Session` header parameter and the `PreviewSession`
/// API-key security scheme, required together with the bearer token (see
/// [`super::Api`]). It is taken as it comes, never refused here: the operation checks it
/// against its preview, after the generation's ownership, so that another user's generation
/// is a 404 whatever the header holds.
pub struct PreviewSession(pub Option<String>);

impl PreviewSession {
    /// The scheme's name in `components.securitySchemes`.
    pub const SCHEME: &'static str = "PreviewSession";
}

impl<'a> ApiExtractor<'a> for PreviewSession {
    const TYPES: &'static [ApiExtractorType] = &[
        ApiExtractorType::Parameter,
        ApiExtractorType::SecurityScheme,
    ];
    const PARAM_IS_REQUIRED: bool = false;

    type ParamType = Option<String>;
    type ParamRawType = String;

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            Self::SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "A preview's session token: the `session_token` of the launch answer (or of \
                     `renewPreviewSession`), an HS256 JWT valid for that preview only, until \
                     `session_expires_at`. The envelope request (`sendPreviewRequest`) needs it \
                     in this header, with the bearer token. The transparent proxy at \
                     `/preview/{preview_id}/` takes it as this header, as `?token=` or as the \
                     `previewd_session` cookie it sets.",
                ),
                name: Some(SESSION_HEADER),
                key_in: Some("header"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![Self::SCHEME]
    }

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Header)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(<Option<String>>::schema_ref())
    }

    fn param_raw_type(&self) -> Option<&String> {
        self.0.as_ref()
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Option<String>>,
    ) -> poem::Result<PreviewSession> {
        let token = request
            .headers()
            .get(SESSION_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        Ok(PreviewSession(token))
    }
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
