//! Liveness and metrics: `/healthz` for probes (no auth) and `/metrics` in the Prometheus text
//! format.

use std::fmt::Write;
use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::state::AppState;

/// Liveness answer.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: String,
    /// previewd's version.
    pub version: String,
}

impl Example for Health {
    fn example() -> Health {
        Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum Alive {
    /// The server runs.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

#[derive(ApiResponse)]
pub enum Metrics {
    /// The metrics, in the Prometheus text exposition format.
    #[oai(status = 200)]
    Ok(PlainText<String>),
}

/// Meta operations.
pub struct MetaApi;

#[OpenApi(tag = "ApiTags::Meta")]
impl MetaApi {
    /// Liveness
    ///
    /// Answers 200 while the server runs. Needs no token.
    #[oai(path = "/healthz", method = "get", operation_id = "health")]
    async fn healthz(&self) -> Alive {
        Alive::Ok(Json(Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    /// Metrics
    ///
    /// Prometheus text format: active previews and leased ports. Needs no token.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, state: Data<&Arc<AppState>>) -> Metrics {
        let supervisor = &state.supervisor;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "# HELP previewd_active_previews Previews starting, running or stopping."
        );
        let _ = writeln!(text, "# TYPE previewd_active_previews gauge");
        let _ = writeln!(
            text,
            "previewd_active_previews {}",
            supervisor.active_count()
        );
        let _ = writeln!(text, "# HELP previewd_leased_ports Ports held by previews.");
        let _ = writeln!(text, "# TYPE previewd_leased_ports gauge");
        let _ = writeln!(text, "previewd_leased_ports {}", supervisor.leased_ports());
        Metrics::Ok(PlainText(text))
    }
}
