//! The one error shape of the API, `{"code": "snake_case_reason", "message": "human sentence"}`,
//! as a typed response every operation declares, and the conversion of poem's own errors
//! (unknown route, malformed JSON, missing token...) into the same shape, so no client ever
//! sees a plain-text or empty error.

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object};

use super::examples;

/// An error answer: every 4xx and 5xx of the API, and of the transparent proxy, has this body.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct ErrorBody {
    /// A stable, snake_case reason a program can branch on.
    pub code: String,
    /// What went wrong and what to do about it, for a person.
    pub message: String,
    /// The preview concerned, when the error is about one (a failed launch).
    #[oai(skip_serializing_if_is_none)]
    pub preview_id: Option<String>,
    /// The app's last output lines, when a launch failed.
    #[oai(skip_serializing_if_is_none)]
    pub last_lines: Option<Vec<String>>,
}

impl Example for ErrorBody {
    /// A launch with `?wait=true` that failed, the one error with every field.
    fn example() -> ErrorBody {
        ErrorBody {
            code: "launch_failed".into(),
            message: "the app exited with code 1 before answering HTTP".into(),
            preview_id: Some(examples::PREVIEW_ID.into()),
            last_lines: Some(vec![
                "Traceback (most recent call last):".into(),
                "ModuleNotFoundError: No module named 'sqlalchemy'".into(),
                "process exited with code 1".into(),
            ]),
        }
    }
}

/// Every error status an operation may answer with, each with an [`ErrorBody`].
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed or names something invalid.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The bearer token (or session token) is missing, malformed, expired or not valid.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such generation or preview (or it belongs to another user).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state (e.g. a preview is already running).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The upload or request body exceeds a limit.
    #[oai(status = 413)]
    TooLarge(Json<ErrorBody>),
    /// The request body's Content-Type is not one the operation takes.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// The project cannot be previewed (no framework detected, no entrypoint, launch failed).
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// The user's preview quota is used up.
    #[oai(status = 429)]
    TooManyPreviews(Json<ErrorBody>),
    /// previewd itself failed (disk, database).
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The preview failed to answer properly.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// No capacity right now (e.g. no free port).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
    /// The preview did not answer in time.
    #[oai(status = 504)]
    GatewayTimeout(Json<ErrorBody>),
}

/// Result of an operation.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with `status` (one of the declared ones; anything else becomes 500).
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError::with_body(
            status,
            ErrorBody {
                code: code.to_string(),
                message: message.into(),
                preview_id: None,
                last_lines: None,
            },
        )
    }

    /// An error with a full body.
    pub fn with_body(status: u16, body: ErrorBody) -> ApiError {
        let body = Json(body);
        match status {
            400 => ApiError::BadRequest(body),
            401 => ApiError::Unauthorized(body),
            404 => ApiError::NotFound(body),
            409 => ApiError::Conflict(body),
            413 => ApiError::TooLarge(body),
            415 => ApiError::UnsupportedMediaType(body),
            422 => ApiError::Unprocessable(body),
            429 => ApiError::TooManyPreviews(body),
            502 => ApiError::BadGateway(body),
            503 => ApiError::Unavailable(body),
            504 => ApiError::GatewayTimeout(body),
            _ => ApiError::Internal(body),
        }
    }

    /// A 404 for a generation that does not exist for this user.
    pub fn generation_not_found(id: &str) -> ApiError {
        ApiError::new(
            404,
            "generation_not_found",
            format!("no generation with id {id}"),
        )
    }

    /// A 500 for a failure of previewd itself; the detail is logged, not shown.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> ApiError {
        tracing::error!("{context}: {err}");
        ApiError::new(
            500,
            "internal_error",
            format!("{context} failed on the server; see its log"),
        )
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> ApiError {
        ApiError::internal("the database", err)
    }
}

/// An error raised outside an operation (in an extractor or a security checker) with a code of
/// its own.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HttpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl poem::error::ResponseError for HttpError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        json_error(self.status, self.code, &self.message)
    }
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "code": code, "message": message });
    poem::web::Json(body).with_status(status).into_response()
}

/// Wraps `endpoint` so that every error poem raises is answered in the JSON shape.
pub fn json_errors<E: Endpoint>(endpoint: E) -> impl Endpoint<Output = Response> {
    poem::EndpointExt::catch_all_error(endpoint, |err: poem::Error| async move {
        // Typed errors (ours, and operation results poem-openapi turned into errors) already
        // carry the JSON body.
        if err.is::<HttpError>() || err.is_from_response() {
            return err.into_response();
        }
        let status = err.status();
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "missing_token",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            s if s.is_server_error() => "internal_error",
            _ => "error",
        };
        let message = match status {
            StatusCode::UNAUTHORIZED => "this call needs `Authorization: Bearer <token>`; `previewd token --user NAME` prints one".to_string(),
            StatusCode::NOT_FOUND => "no such route; the API is described at /docs".to_string(),
            _ => err.to_string(),
        };
        json_error(status, code, &message)
    })
}
