//! One route table from two sources: what the running app reports (exact, but only while it
//! runs, and often without source locations) and what the plugin reads from the source (always
//! there, with files and lines). Runtime entries win and borrow what they lack from their static
//! twin; static entries the app does not report are kept, marked static, so nothing the source
//! declares disappears from view.

use std::collections::HashMap;

use previewd_plugin_api::Endpoint;

/// Where an entry of the merged table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Static,
    Runtime,
}

/// Merges `runtime` (when the app reported a table) with `statics`, sorted by path then method.
pub fn merge(runtime: Option<&[Endpoint]>, statics: &[Endpoint]) -> Vec<(Endpoint, Origin)> {
    let Some(runtime) = runtime else {
        return sorted(
            statics
                .iter()
                .map(|e| (e.clone(), Origin::Static))
                .collect(),
        );
    };
    let mut by_key: HashMap<(&str, &str), &Endpoint> = statics
        .iter()
        .map(|e| ((e.method.as_str(), e.path.as_str()), e))
        .collect();
    let mut merged: Vec<(Endpoint, Origin)> = runtime
        .iter()
        .map(|live| {
            let mut endpoint = live.clone();
            if let Some(twin) = by_key.remove(&(live.method.as_str(), live.path.as_str())) {
                endpoint.summary = endpoint.summary.or_else(|| twin.summary.clone());
                endpoint.description = endpoint.description.or_else(|| twin.description.clone());
                endpoint.file = endpoint.file.or_else(|| twin.file.clone());
                endpoint.line = endpoint.line.or(twin.line);
                if endpoint.tags.is_empty() {
                    endpoint.tags = twin.tags.clone();
                }
            }
            (endpoint, Origin::Runtime)
        })
        .collect();
    merged.extend(
        statics
            .iter()
            .filter(|e| by_key.contains_key(&(e.method.as_str(), e.path.as_str())))
            .map(|e| (e.clone(), Origin::Static)),
    );
    sorted(merged)
}

fn sorted(mut table: Vec<(Endpoint, Origin)>) -> Vec<(Endpoint, Origin)> {
    table.sort_by(|(a, _), (b, _)| a.path.cmp(&b.path).then_with(|| a.method.cmp(&b.method)));
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(method: &str, path: &str, line: Option<u32>) -> Endpoint {
        Endpoint {
            method: method.into(),
            path: path.into(),
            path_params: Endpoint::params_of(path),
            summary: None,
            description: None,
            tags: Vec::new(),
            file: line.map(|_| "main.py".into()),
            line,
        }
    }

    /// Without a runtime table the static one is the answer.
    #[test]
    fn static_only() {
        let table = merge(
            None,
            &[
                endpoint("GET", "/b", Some(2)),
                endpoint("GET", "/a", Some(1)),
            ],
        );
        assert_eq!(
            table
                .iter()
                .map(|(e, _)| e.path.as_str())
                .collect::<Vec<_>>(),
            ["/a", "/b"]
        );
        assert!(table.iter().all(|(_, o)| *o == Origin::Static));
    }

    /// Runtime entries win and borrow the location of their static twin; static entries the app
    /// does not report stay, marked static.
    #[test]
    fn runtime_wins_and_borrows() {
        let runtime = [
            endpoint("GET", "/a", None),
            endpoint("POST", "/only-live", None),
        ];
        let statics = [
            endpoint("GET", "/a", Some(7)),
            endpoint("DELETE", "/only-source", Some(9)),
        ];
        let table = merge(Some(&runtime), &statics);
        let view: Vec<_> = table
            .iter()
            .map(|(e, o)| (e.method.as_str(), e.path.as_str(), e.line, *o))
            .collect();
        assert_eq!(
            view,
            [
                ("GET", "/a", Some(7), Origin::Runtime),
                ("POST", "/only-live", None, Origin::Runtime),
                ("DELETE", "/only-source", Some(9), Origin::Static),
            ]
        );
    }
}
