//! FastAPI's reading of dependency manifests: which one lists fastapi (detection evidence) and
//! whether the one the host installs holds FastAPI below the release that made
//! `include_router` lazy. Finding and choosing manifests is
//! `previewd_plugin_python::dependency_manifests`, shared with the other Python plugins.

use previewd_plugin_api::Project;
use previewd_plugin_python::dependency_manifests::{manifest_listing, requirements};

/// The package whose mention in a manifest counts as evidence.
const PACKAGE: &str = "fastapi";

/// The PEP 621 / Poetry project file name.
const PYPROJECT: &str = "pyproject.toml";

/// The first FastAPI release whose `include_router` keeps the router (routes registered on it
/// later are served too); earlier ones copy the routes it has at that moment.
const LAZY_INCLUDES_SINCE: &str = "0.137.0";

/// The first manifest (`requirements*.txt`, `pyproject.toml`, `Pipfile`; shallowest first)
/// that lists fastapi, relative to the root.
pub(crate) fn listing_fastapi(project: &Project) -> Option<String> {
    manifest_listing(project, PACKAGE)
}

/// Whether the FastAPI installed for an app in `entry_dir` copies routes at `include_router`
/// time: the manifest previewd installs (see [`requirements`]) caps fastapi below 0.137
/// (`fastapi==0.115.0`, `fastapi<0.130`, `fastapi~=0.110.0`). Without such a cap the newest
/// FastAPI is installed, and it does not copy.
pub(crate) fn includes_copy_routes(project: &Project, entry_dir: &str) -> bool {
    requirements(project, entry_dir).iter().any(|path| {
        let Ok(text) = project.read_to_string(path) else {
            return false;
        };
        let pyproject = path.file_name().is_some_and(|n| n == PYPROJECT);
        let requirements = match pyproject {
            true => project_dependencies(&text),
            false => text
                .lines()
                .map(|line| line.split('#').next().unwrap_or("").to_string())
                .collect(),
        };
        requirements
            .iter()
            .filter_map(|r| specifiers_of(r, PACKAGE))
            .any(|specifiers| caps_below(specifiers, LAZY_INCLUDES_SINCE))
    })
}

/// The strings of a `pyproject.toml`'s `[project]` `dependencies = [...]` (what previewd
/// installs from it), one per requirement.
fn project_dependencies(text: &str) -> Vec<String> {
    let mut table = "";
    let mut inside = false;
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let value = if inside {
            line
        } else if line.starts_with('[') {
            table = line;
            continue;
        } else {
            let value = line
                .strip_prefix("dependencies")
                .and_then(|rest| rest.trim_start().strip_prefix('='));
            match value {
                Some(value) if table == "[project]" => value,
                _ => continue,
            }
        };
        let (strings, rest) = quoted_strings(value);
        found.extend(strings);
        inside = !rest.contains(']');
    }
    found
}

/// The contents of the `"..."` and `'...'` strings on a line, and the line without them.
fn quoted_strings(line: &str) -> (Vec<String>, String) {
    let mut found = Vec::new();
    let mut outside = String::new();
    let mut rest = line;
    while let Some(start) = rest.find(['"', '\'']) {
        outside.push_str(&rest[..start]);
        let quote = &rest[start..start + 1];
        let after = &rest[start + 1..];
        let Some(end) = after.find(quote) else {
            rest = "";
            break;
        };
        found.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    outside.push_str(rest);
    (found, outside)
}

/// The version specifiers of a requirement line naming `package`
/// (`fastapi[standard] >=0.100, <0.120 ; python_version > "3.8"` gives `>=0.100, <0.120`).
fn specifiers_of<'r>(requirement: &'r str, package: &str) -> Option<&'r str> {
    let requirement = requirement.trim();
    let name_end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(requirement.len());
    if !requirement[..name_end].eq_ignore_ascii_case(package) {
        return None;
    }
    let mut rest = requirement[name_end..].trim_start();
    if let Some(extras) = rest.strip_prefix('[') {
        rest = extras.split_once(']')?.1.trim_start();
    }
    let rest = rest.split(';').next().unwrap_or("");
    Some(rest.trim().trim_start_matches('(').trim_end_matches(')'))
}

/// Whether every version `specifiers` allows is below `version`.
fn caps_below(specifiers: &str, version: &str) -> bool {
    let version = numbers(version);
    let below = |bound: &[u64]| compare(bound, &version).is_le();
    specifiers.split(',').map(str::trim).any(|clause| {
        let Some(at) = clause.find(|c: char| c.is_ascii_digit()) else {
            return false;
        };
        let (operator, value) = (clause[..at].trim(), clause[at..].trim());
        let wildcard = value.ends_with(".*");
        let parts = numbers(value.trim_end_matches(".*"));
        match operator {
            // `==0.115.*` allows up to, not including, 0.116.
            "==" | "===" if wildcard => below(&next_release(&parts, parts.len())),
            "==" | "===" | "<=" => compare(&parts, &version).is_lt(),
            "<" => below(&parts),
            // `~=0.110.1` allows `>=0.110.1, ==0.110.*`.
            "~=" if parts.len() >= 2 => below(&next_release(&parts, parts.len() - 1)),
            _ => false,
        }
    })
}

/// The release numbers of a version: `0.115.0` → `[0, 115, 0]`, `1.0rc1` → `[1, 0]`.
fn numbers(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// Compares release numbers as versions do: missing numbers count as zeros.
fn compare(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    (0..a.len().max(b.len()))
        .map(|i| at(a, i).cmp(&at(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// The first release after every version that starts with the first `len` numbers of `parts`: `[0, 115, 2]` and 2 give `[0, 116]`.
fn next_release(parts: &[u64], len: usize) -> Vec<u64> {
    let mut next = parts[..len.min(parts.len())].to_vec();
    match next.last_mut() {
        Some(last) => *last += 1,
        // Nothing to bump: no bound.
        None => next.push(u64::MAX),
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastapi_caps() {
        let caps = |requirement: &str| {
            specifiers_of(requirement, "fastapi").is_some_and(|s| caps_below(s, "0.137.0"))
        };
        for capped in [
            "fastapi==0.115.0",
            "FastAPI[standard] == 0.110.*",
            "fastapi<0.137",
            "fastapi>=0.100,<0.137.0",
            "fastapi<=0.136.9",
            "fastapi~=0.110.1",
            "fastapi (==0.99.1) ; python_version > '3.8'",
        ] {
            assert!(caps(capped), "{capped}");
        }
        for open in [
            "fastapi",
            "fastapi[standard]",
            "fastapi>=0.100",
            "fastapi<1.0.0,>=0.114.2",
            "fastapi==0.137.0",
            "fastapi<=0.137",
            "fastapi<0.137.1",
            "fastapi~=0.110",
            "fastapi!=0.110.0",
            "fastapi-users==12.0.0",
        ] {
            assert!(!caps(open), "{open}");
        }
        let pyproject = "[project]\nname = \"x\"\ndependencies = [\n  \"fastapi[standard]==0.115.0\",  # pinned\n  'uvicorn',\n]\n\n[tool.uv]\ndev-dependencies = [\"pytest\"]\n";
        assert_eq!(
            project_dependencies(pyproject),
            ["fastapi[standard]==0.115.0", "uvicorn"]
        );
        assert_eq!(
            project_dependencies("[project]\ndependencies = [\"a\", \"b[c]\"]\nx = [\"d\"]\n"),
            ["a", "b[c]"]
        );
    }
}
