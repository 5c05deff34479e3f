//! The HTTP API: poem-openapi operations, one struct per area, combined into one service whose
//! spec is served at `/api/v1/openapi.json` and browsed at `/docs`.
//!
//! # Layout
//! - [`error`]: the JSON error shape and the typed error responses.
//! - [`security`]: the bearer-token security scheme.
//! - [`generations`]: uploads, listing, deletion.
//! - [`previews`]: launch, status, stop, endpoints, envelope request, config.
//! - [`lifecycle`]: restart, keepalive, session renewal, the caller's previews.
//! - [`logs`]: the SSE log stream.
//! - [`meta`]: health and metrics.

pub mod error;
pub mod generations;
pub mod lifecycle;
pub mod logs;
pub mod meta;
pub mod previews;
pub mod security;

use poem_openapi::{OpenApiService, Tags};

/// Operation groups, in the order Swagger UI shows them.
#[derive(Tags)]
pub enum ApiTags {
    /// Upload, list and delete projects.
    Generations,
    /// Launch, observe, call and stop a generation's preview.
    Previews,
    /// Follow a preview's output live.
    Logs,
    /// Health and metrics.
    Meta,
}

/// Every operation, as one service.
pub type Service = OpenApiService<
    (
        generations::GenerationsApi,
        previews::PreviewsApi,
        lifecycle::LifecycleApi,
        logs::LogsApi,
        meta::MetaApi,
    ),
    (),
>;

/// The API. Operations find the [`AppState`](crate::state::AppState) in the request's data, so the spec can be built
/// without a server (`previewd openapi`).
pub fn service() -> Service {
    OpenApiService::new(
        (
            generations::GenerationsApi,
            previews::PreviewsApi,
            lifecycle::LifecycleApi,
            logs::LogsApi,
            meta::MetaApi,
        ),
        "previewd",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Live previews of generated web backends. Upload a project (a generation), launch it, \
         follow its logs, call it, list its routes and stop it. Every `/api/v1` call needs \
         `Authorization: Bearer <token>` (`previewd token --user NAME` prints one); errors are \
         `{\"code\", \"message\"}`.\n\n\
         A running preview is also served as itself at its `base_url`, `/preview/{preview_id}/` \
         (outside this API): a transparent proxy that forwards any method, path, query, headers \
         and body, streamed both ways, WebSocket included, to the app. It needs the launch's \
         session token as the `X-Preview-Session` header, as `?token=` (taken out of the URL; the \
         answer sets an HttpOnly `previewd_session` cookie scoped to the preview's path, so a \
         browser or an iframe keeps working) or as that cookie; the app never sees the token. \
         The app gets `X-Forwarded-For/-Proto/-Host/-Prefix`, and previewd's Python runtimes \
         serve it under the prefix (FastAPI's `root_path`, WSGI's `SCRIPT_NAME`), so its own \
         Swagger UI works at `/preview/{preview_id}/docs`. Refusals are JSON like the API's: \
         401 token, 404 unknown preview, 503 `preview_not_running`, 502 app unreachable, 504 app \
         silent for the request timeout.",
    )
}
