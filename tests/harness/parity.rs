//! Route parity: how well the static route table (tree-sitter, before launch) matches the table
//! the running app reports, for one project launched for real. Precision is the share of static
//! routes the app really has, recall the share of the app's routes the static table found.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::Client;

/// A (method, path) route.
pub type Route = (String, String);

/// The two tables of one project.
#[derive(Debug, Clone)]
pub struct Parity {
    /// The plugin that claimed the project.
    pub framework: Option<String>,
    pub statics: BTreeSet<Route>,
    pub runtime: BTreeSet<Route>,
    /// Why the runtime table is missing (upload or launch failed).
    pub error: Option<String>,
}

impl Parity {
    /// Static routes the app has, over static routes.
    pub fn precision(&self) -> f64 {
        ratio(
            self.statics.intersection(&self.runtime).count(),
            self.statics.len(),
        )
    }

    /// App routes the static table found, over app routes.
    pub fn recall(&self) -> f64 {
        ratio(
            self.statics.intersection(&self.runtime).count(),
            self.runtime.len(),
        )
    }

    /// The harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// Routes the app has that the static table missed.
    pub fn missed(&self) -> Vec<&Route> {
        self.runtime.difference(&self.statics).collect()
    }

    /// Static routes the app does not have.
    pub fn extra(&self) -> Vec<&Route> {
        self.statics.difference(&self.runtime).collect()
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// Uploads `dir`, reads its static routes, launches it, reads the routes the app reports, stops
/// it and deletes the upload.
pub async fn measure(client: &Client, dir: &Path) -> Parity {
    let generation = client.upload_dir(dir).await;
    let info = client.get(&format!("/generations/{generation}")).await;
    let framework = info.body["framework"].as_str().map(str::to_string);
    let endpoints = format!("/generations/{generation}/preview/endpoints");
    let statics = routes_of(&client.get(&endpoints).await.body, "static");
    let launched = client.launch_wait(&generation).await;
    let (runtime, error) = if launched.status == 200 {
        (
            routes_of(&client.get(&endpoints).await.body, "runtime"),
            None,
        )
    } else {
        let message = launched.body["message"]
            .as_str()
            .unwrap_or("launch failed")
            .to_string();
        (BTreeSet::new(), Some(message))
    };
    client.stop_preview(&generation).await;
    client.delete(&format!("/generations/{generation}")).await;
    Parity {
        framework,
        statics,
        runtime,
        error,
    }
}

/// The (method, path) routes of an `/endpoints` answer with the given `source`.
fn routes_of(body: &Value, source: &str) -> BTreeSet<Route> {
    body["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["source"] == source)
        .filter_map(|e| {
            Some((
                e["method"].as_str()?.to_string(),
                e["path"].as_str()?.to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(routes: &[(&str, &str)]) -> BTreeSet<Route> {
        routes
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect()
    }

    /// Precision, recall and F1 of a partial match.
    #[test]
    fn scores() {
        let parity = Parity {
            framework: None,
            statics: set(&[("GET", "/a"), ("GET", "/wrong")]),
            runtime: set(&[("GET", "/a"), ("POST", "/a"), ("GET", "/b")]),
            error: None,
        };
        assert_eq!(parity.precision(), 0.5);
        assert!((parity.recall() - 1.0 / 3.0).abs() < 1e-9);
        assert!((parity.f1() - 0.4).abs() < 1e-9);
        assert_eq!(parity.missed().len(), 2);
        assert_eq!(parity.extra().len(), 1);
    }
}
