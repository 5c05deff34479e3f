//! Endpoint records: one per (method, path) a project declares, and the path rule of Node
//! routers ([`join_path`]).

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

/// Joins a mount prefix and a route path the way Node routers (Express, Koa's routers) serve
/// them, written as endpoints are: joined with `/`, repeated slashes collapsed, no trailing
/// slash (except for `/` itself), and the `:id`, `:id?` and `:id(\d+)` parameters as `{id}`.
/// previewd's Node launcher writes a running Express app's table by the same rule
/// (`runtimes/node/route_table.js`), so static and runtime routes compare equal.
pub fn join_path(prefix: &str, path: &str) -> String {
    let mut joined = String::new();
    for c in format!("{prefix}/{path}").chars() {
        if !(c == '/' && joined.ends_with('/')) {
            joined.push(c);
        }
    }
    if joined.len() > 1 && joined.ends_with('/') {
        joined.pop();
    }
    colon_params(&joined)
}

/// `:id`, `:id?`, `:id(\d+)` → `{id}`.
fn colon_params(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        let starts_name = chars
            .peek()
            .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_' || *n == '$');
        if c != ':' || !starts_name {
            out.push(c);
            continue;
        }
        let mut name = String::new();
        while let Some(n) = chars.next_if(|n| n.is_ascii_alphanumeric() || *n == '_' || *n == '$') {
            name.push(n);
        }
        if chars.next_if_eq(&'(').is_some() {
            for n in chars.by_ref() {
                if n == ')' {
                    break;
                }
            }
        }
        chars.next_if_eq(&'?');
        out.push_str(&format!("{{{name}}}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{join_path, Endpoint};

    /// The joining rule the Node launcher shares.
    #[test]
    fn joining() {
        assert_eq!(join_path("", "/"), "/");
        assert_eq!(join_path("//api/", "/"), "/api");
        assert_eq!(join_path("/api", "users/:id"), "/api/users/{id}");
        assert_eq!(join_path("/", "/a/:b?/:c(\\d+)/x"), "/a/{b}/{c}/x");
        assert_eq!(join_path("", "/t/:a-:b"), "/t/{a}-{b}");
        assert_eq!(join_path("", "/time/12:30"), "/time/12:30");
    }

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
