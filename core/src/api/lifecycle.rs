//! What keeps a preview going or starts it again, and what a user has running: restart,
//! keepalive, a fresh session token, and the list of the caller's previews.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::error::{ApiError, ApiResult};
use super::generations::owned_generation;
use super::previews::{
    latest, launch_generation, status_body, LaunchRequest, LaunchResponse, PreviewStatusBody,
    Status,
};
use super::security::UserAuth;
use super::{examples, ApiTags};
use crate::state::AppState;
use crate::store::{GenerationRecord, PreviewRecord};
use crate::supervisor::LaunchOptions;

/// A fresh session token for a preview.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Session {
    /// The preview it opens.
    pub preview_id: String,
    /// Token for the proxy and the envelope request (`X-Preview-Session`, the `PreviewSession`
    /// security scheme).
    pub session_token: String,
    /// When it expires.
    pub session_expires_at: DateTime<Utc>,
}

impl Example for Session {
    fn example() -> Session {
        Session {
            preview_id: examples::PREVIEW_ID.into(),
            session_token: examples::SESSION_TOKEN.into(),
            session_expires_at: examples::at(examples::SESSION_EXPIRES_AT),
        }
    }
}

/// The caller's previews.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PreviewList {
    /// The latest preview of each of the caller's generations, newest first.
    pub previews: Vec<PreviewStatusBody>,
}

impl Example for PreviewList {
    fn example() -> PreviewList {
        PreviewList {
            previews: vec![PreviewStatusBody::example()],
        }
    }
}

#[derive(ApiResponse)]
pub enum KeptAlive {
    /// The preview's status, with its new `idle_expires_at`.
    #[oai(status = 200)]
    Ok(Json<PreviewStatusBody>),
}

#[derive(ApiResponse)]
pub enum Renewed {
    /// The new session token.
    #[oai(status = 200)]
    Ok(Json<Session>),
}

#[derive(ApiResponse)]
pub enum Previews {
    /// The caller's previews.
    #[oai(status = 200)]
    Ok(Json<PreviewList>),
}

/// Lifecycle operations.
pub struct LifecycleApi;

#[OpenApi(tag = "ApiTags::Previews")]
impl LifecycleApi {
    /// Restart the preview
    ///
    /// Stops the generation's preview if it is active, then launches it again with the options
    /// of its last launch (a body replaces them). The new run has a new preview id and session
    /// token; its log lines carry on the generation's numbering. Answers like launch.
    #[oai(
        path = "/api/v1/generations/:generation_id/preview/restart",
        method = "post",
        operation_id = "restartPreview"
    )]
    async fn restart(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
        /// Wait until the app runs or fails.
        #[oai(default)]
        wait: Query<bool>,
        body: Json<Option<LaunchRequest>>,
    ) -> ApiResult<LaunchResponse> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        let previous = latest(&state, &generation)?;
        state
            .supervisor
            .stop(&previous.id, "restarted by the user")
            .await;
        let options = match body.0 {
            Some(request) => LaunchOptions {
                framework: request.framework.filter(|f| !f.trim().is_empty()),
                env: request.env,
                migrate: request.migrate,
            },
            None => previous.options,
        };
        launch_generation(&state, &auth.0, generation, options, wait.0).await
    }

    /// Keep the preview alive
    ///
    /// Counts as use of the preview: its idle timeout starts again (see `idle_expires_at`).
    /// The maximum uptime still applies. 409 when the preview is not active.
    #[oai(
        path = "/api/v1/generations/:generation_id/preview/keepalive",
        method = "post",
        operation_id = "keepPreviewAlive"
    )]
    async fn keepalive(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
    ) -> ApiResult<KeptAlive> {
        let (generation, record) = active_preview(&state, &auth.0, &generation_id.0)?;
        state.supervisor.touch(&record.id);
        Ok(KeptAlive::Ok(Json(
            status_body(&state, &generation, &record.id).await?,
        )))
    }

    /// Renew the session token
    ///
    /// A new session token for the generation's active preview, valid for the session timeout
    /// from now; the previous one stays valid until it expires. 409 when the preview is not
    /// active.
    #[oai(
        path = "/api/v1/generations/:generation_id/preview/session",
        method = "post",
        operation_id = "renewPreviewSession"
    )]
    async fn session(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
    ) -> ApiResult<Renewed> {
        let (_, record) = active_preview(&state, &auth.0, &generation_id.0)?;
        let session = state
            .auth
            .session_token(&auth.0, &record.id, state.config.session_timeout);
        Ok(Renewed::Ok(Json(Session {
            preview_id: record.id,
            session_token: session.token,
            session_expires_at: session.expires_at,
        })))
    }

    /// List your previews
    ///
    /// The latest preview of each of the caller's generations with its status, newest first;
    /// `status` keeps only those in that status (`running` lists what counts against the quota,
    /// with `starting` and `stopping`).
    #[oai(
        path = "/api/v1/previews",
        method = "get",
        operation_id = "listPreviews"
    )]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// Only previews in this status.
        status: Query<Option<Status>>,
    ) -> ApiResult<Previews> {
        let mut previews = Vec::new();
        for generation in state.store.generations_of(&auth.0)? {
            let Some(record) = state.store.latest_preview(&generation.id)? else {
                continue;
            };
            let body = status_body(&state, &generation, &record.id).await?;
            if status.0.is_none_or(|wanted| wanted == body.status) {
                previews.push(body);
            }
        }
        previews.sort_by_key(|p| std::cmp::Reverse(p.started_at));
        Ok(Previews::Ok(Json(PreviewList { previews })))
    }
}

/// The caller's generation and its preview, which must be active.
fn active_preview(
    state: &AppState,
    user: &str,
    generation_id: &str,
) -> ApiResult<(GenerationRecord, PreviewRecord)> {
    let generation = owned_generation(state, user, generation_id)?;
    let record = latest(state, &generation)?;
    if !record.status.is_active() {
        return Err(ApiError::new(
            409,
            "preview_not_running",
            format!(
                "the preview is {}; launch or restart it first",
                record.status.as_str()
            ),
        ));
    }
    Ok((generation, record))
}
