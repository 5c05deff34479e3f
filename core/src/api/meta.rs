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
    /// Prometheus text format: active previews, leased ports, warm processes (idle, by stage),
    /// their memory against the `--warm-memory` budget, and launches by how they started.
    /// Needs no token.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, state: Data<&Arc<AppState>>) -> Metrics {
        let supervisor = &state.supervisor;
        let warm = supervisor.warm_metrics();
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(text, "# HELP {name} {help}");
            let _ = writeln!(text, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(text, "{name}{labels} {value}");
            }
        };
        metric(
            "previewd_active_previews",
            "gauge",
            "Previews starting, running or stopping.",
            &[("", supervisor.active_count() as u64)],
        );
        metric(
            "previewd_leased_ports",
            "gauge",
            "Ports held by previews.",
            &[("", supervisor.leased_ports() as u64)],
        );
        metric(
            "previewd_warm_processes",
            "gauge",
            "Idle warm processes: starting (importing their framework) or ready for a project.",
            &[
                ("{state=\"starting\"}", warm.starting as u64),
                ("{state=\"ready\"}", warm.ready as u64),
            ],
        );
        metric(
            "previewd_warm_memory_bytes",
            "gauge",
            "Memory (RSS) of the idle warm processes together.",
            &[("", warm.memory_bytes)],
        );
        metric(
            "previewd_warm_memory_budget_bytes",
            "gauge",
            "The --warm-memory budget of idle warm processes (0: no budget).",
            &[("", warm.budget_bytes.unwrap_or(0))],
        );
        metric(
            "previewd_launches_total",
            "counter",
            "Launches that reached a process, by how they started: in a warm process or cold.",
            &[
                ("{start=\"warm\"}", warm.warm_launches),
                ("{start=\"cold\"}", warm.cold_launches),
            ],
        );
        Metrics::Ok(PlainText(text))
    }
}
