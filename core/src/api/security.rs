//! The API's security scheme: a bearer JWT naming the user. A failed check answers 401 in the
//! API's JSON error shape, saying whether the token was expired or not valid.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::Request;
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
