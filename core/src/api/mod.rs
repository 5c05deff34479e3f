//! The HTTP API: poem-openapi operations, one struct per area, combined into one service whose
//! spec is served at `/api/v1/openapi.json` and browsed at `/docs`.
//!
//! # Layout
//! - [`error`]: the JSON error shape and the typed error responses.
//! - [`security`]: the security schemes: the bearer token and a preview's session token.
//! - [`generations`]: uploads, listing, deletion.
//! - [`previews`]: launch, status, stop, endpoints, envelope request, config.
//! - [`lifecycle`]: restart, keepalive, session renewal, the caller's previews.
//! - [`logs`]: the SSE log stream.
//! - [`meta`]: health and metrics.
//! - [`plugins`]: the plugin listing.

pub mod error;
pub mod generations;
pub mod lifecycle;
pub mod logs;
pub mod meta;
pub mod plugins;
pub mod previews;
pub mod security;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem_openapi::registry::{MetaApi, Registry};
use poem_openapi::{OpenApi, OpenApiService, Tags};

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

/// Values the schemas' examples share, so that together they tell one story: a FastAPI project
/// uploaded as `todo-api`, launched and running on port 3001.
pub(crate) mod examples {
    use super::{DateTime, Utc};

    /// The generation's id.
    pub const GENERATION_ID: &str = "0199e7a2-5c3b-7d41-9f0e-2b6c8a1d4e73";
    /// The preview's id.
    pub const PREVIEW_ID: &str = "0199e7a3-1f08-7a92-b3c4-5d6e7f8091a2";
    /// The preview's session token (shortened).
    pub const SESSION_TOKEN: &str =
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZXYiLCJhdWQiOiJzZXNzaW9uIn0.\
         Xq3nR8m2kV0cJ5tW9yL1pB7dF4gH6sA2eZ0uI8oN3wQ";
    /// The app's port.
    pub const PORT: u16 = 3001;
    /// The transparent proxy address of the preview.
    pub const BASE_URL: &str = "/preview/0199e7a3-1f08-7a92-b3c4-5d6e7f8091a2/";
    /// The project's upload.
    pub const UPLOADED_AT: &str = "2025-10-15T09:30:00Z";
    /// The launch.
    pub const LAUNCHED_AT: &str = "2025-10-15T09:31:00Z";
    /// The app's first HTTP answer.
    pub const READY_AT: &str = "2025-10-15T09:31:04.250Z";
    /// The session token's expiry (30 minutes after the launch).
    pub const SESSION_EXPIRES_AT: &str = "2025-10-15T10:01:00Z";
    /// The preview's end at the latest (an hour after the launch).
    pub const EXPIRES_AT: &str = "2025-10-15T10:31:00Z";

    /// The generation's id, as a parameter's example.
    pub fn generation_id() -> String {
        GENERATION_ID.into()
    }

    /// `rfc3339` as a time.
    pub fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .map(|time| time.with_timezone(&Utc))
            .unwrap_or_default()
    }
}

/// The operation areas.
type Areas = (
    generations::GenerationsApi,
    previews::PreviewsApi,
    lifecycle::LifecycleApi,
    logs::LogsApi,
    meta::MetaApi,
    plugins::PluginsApi,
);

/// Every operation area, as one API: the areas' own operations and routes, except that an
/// operation taking several security schemes (the envelope request takes the bearer token and
/// the session token) lists them as one requirement, all needed, as the operation checks them
/// all. poem-openapi would list each as an alternative of its own, meaning any one would do.
pub struct Api(Areas);

impl OpenApi for Api {
    fn meta() -> Vec<MetaApi> {
        let mut apis = Areas::meta();
        let operations = apis
            .iter_mut()
            .flat_map(|api| api.paths.iter_mut())
            .flat_map(|path| path.operations.iter_mut());
        for operation in operations {
            if operation.security.len() > 1 {
                let schemes: Vec<_> = operation
                    .security
                    .iter()
                    .flat_map(|requirement| requirement.iter())
                    .map(|(name, scopes)| (*name, scopes.clone()))
                    .collect();
                operation.security = vec![requirement(schemes)];
            }
        }
        apis
    }

    fn register(registry: &mut Registry) {
        Areas::register(registry);
    }

    fn add_routes(self, route_table: &mut HashMap<String, HashMap<Method, BoxEndpoint<'static>>>) {
        self.0.add_routes(route_table);
    }
}

/// One security requirement naming every scheme of `schemes`, in that order. poem-openapi
/// keeps a requirement in a `HashMap`, whose iteration order is drawn at random per map; the
/// spec must come out the same on every run (it is committed and compared byte for byte), so
/// maps are built until one iterates in the order given. Each new map has new hash keys, so a
/// handful of tries suffices; past the bound the last map stands (same meaning, other order).
fn requirement(
    schemes: Vec<(&'static str, Vec<&'static str>)>,
) -> HashMap<&'static str, Vec<&'static str>> {
    let names: Vec<&str> = schemes.iter().map(|(name, _)| *name).collect();
    let mut map = HashMap::new();
    for _ in 0..10_000 {
        map = schemes.iter().cloned().collect::<HashMap<_, _>>();
        if map.keys().copied().eq(names.iter().copied()) {
            break;
        }
    }
    map
}

/// Every operation, as one service.
pub type Service = OpenApiService<Api, ()>;

/// The API. Operations find the [`AppState`](crate::state::AppState) in the request's data, so the spec can be built
/// without a server (`previewd openapi`).
pub fn service() -> Service {
    OpenApiService::new(
        Api((
            generations::GenerationsApi,
            previews::PreviewsApi,
            lifecycle::LifecycleApi,
            logs::LogsApi,
            meta::MetaApi,
            plugins::PluginsApi,
        )),
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
