//! Endpoint records: one per (method, path) a project declares.

/// One HTTP route of a project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// Upper-case HTTP method (`GET`, `POST`, ...).
    pub method: String,
    /// The full path as a client requests it, with parameters as `{name}`.
    pub path: String,
    /// The names of the path parameters, in order of appearance.
    pub path_params: Vec<String>,
    /// A one-line summary (an explicit `summary=`, else the handler's name in words).
    pub summary: Option<String>,
    /// A longer description (an explicit `description=`, else the handler's docstring).
    pub description: Option<String>,
    /// Grouping tags, outermost first.
    pub tags: Vec<String>,
    /// The file declaring the handler, relative to the project root.
    pub file: Option<String>,
    /// The 1-based line of the handler's declaration.
    pub line: Option<u32>,
}

impl Endpoint {
    /// The `{name}` parameters of a path, in order.
    pub fn params_of(path: &str) -> Vec<String> {
        let mut params = Vec::new();
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            let inner = &rest[start + 1..start + len];
            // `{path:path}` (Starlette converters) names the parameter before the colon.
            let name = inner.split(':').next().unwrap_or(inner).trim();
            if !name.is_empty() {
                params.push(name.to_string());
            }
            rest = &rest[start + len + 1..];
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    /// Parameters come out in order, converters stripped, unbalanced braces ignored.
    #[test]
    fn params_of_paths() {
        assert_eq!(
            Endpoint::params_of("/users/{user_id}/items/{item_id}"),
            ["user_id", "item_id"]
        );
        assert_eq!(
            Endpoint::params_of("/files/{file_path:path}"),
            ["file_path"]
        );
        assert!(Endpoint::params_of("/plain").is_empty());
        assert!(Endpoint::params_of("/broken/{oops").is_empty());
    }
}
