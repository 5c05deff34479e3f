//! Dependency manifests of a Python project: whether one names a package (detection evidence
//! for a framework plugin) and which one the host installs before launch (`requirements.txt`
//! next to the app or above it, else a `pyproject.toml` that declares dependencies).
//!
//! Framework-neutral: the FastAPI, Flask and Django plugins all use it.

use std::path::{Path, PathBuf};

use previewd_plugin_api::Project;

use crate::modules::{join, parent_dir, slash_path};

/// The pip requirements file name.
const REQUIREMENTS: &str = "requirements.txt";

/// The PEP 621 / Poetry project file name.
const PYPROJECT: &str = "pyproject.toml";

/// The first manifest (`requirements*.txt`, `pyproject.toml`, `Pipfile`; shallowest first)
/// that lists `package`, relative to the root.
pub fn manifest_listing(project: &Project, package: &str) -> Option<String> {
    let mut manifests: Vec<(usize, String)> = project
        .files()
        .iter()
        .filter(|p| is_manifest(p))
        .filter_map(|p| slash_path(p))
        .map(|p| (p.matches('/').count(), p))
        .collect();
    manifests.sort();
    manifests.into_iter().map(|(_, path)| path).find(|path| {
        project
            .read_to_string(path)
            .is_ok_and(|text| lists_package(&text, package))
    })
}

/// The manifests to install for an app whose entry file is in `entry_dir`: the nearest
/// `requirements.txt` from `entry_dir` up to the root, else the nearest `pyproject.toml` that
/// declares dependencies. Empty when there is neither.
pub fn requirements(project: &Project, entry_dir: &str) -> Vec<PathBuf> {
    let dirs: Vec<&str> =
        std::iter::successors(Some(entry_dir), |d| (!d.is_empty()).then(|| parent_dir(d)))
            .collect();
    let nearest = |name: &str, accept: &dyn Fn(&str) -> bool| {
        dirs.iter()
            .map(|d| join(d, name))
            .find(|path| project.has_file(path) && accept(path))
    };
    let declares_dependencies = |path: &str| {
        project
            .read_to_string(path)
            .is_ok_and(|text| pyproject_declares_dependencies(&text))
    };
    nearest(REQUIREMENTS, &|_| true)
        .or_else(|| nearest(PYPROJECT, &declares_dependencies))
        .map(PathBuf::from)
        .into_iter()
        .collect()
}

/// Whether a file is a dependency manifest by its name.
fn is_manifest(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == PYPROJECT
        || name == "Pipfile"
        || (name.starts_with("requirements") && name.ends_with(".txt"))
}

/// Whether a manifest's text names `package` as a dependency: as a whole word in a line that
/// is not a comment (`flask[async]>=3`, `"Flask>=2.3"`, `flask = "^3.0"`).
pub fn lists_package(text: &str, package: &str) -> bool {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| {
            line.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        })
        .any(|word| word.eq_ignore_ascii_case(package))
}

/// Whether a `pyproject.toml` declares dependencies: a non-empty `dependencies = [...]`
/// (PEP 621) or a `[tool.poetry.dependencies]` table.
fn pyproject_declares_dependencies(text: &str) -> bool {
    text.lines().map(str::trim).any(|line| {
        if line.starts_with("[tool.poetry.dependencies]") {
            return true;
        }
        let Some(value) = line
            .strip_prefix("dependencies")
            .and_then(|rest| rest.trim_start().strip_prefix('='))
        else {
            return false;
        };
        let value: String = value.split_whitespace().collect();
        value.starts_with('[') && value != "[]"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_package() {
        assert!(lists_package("waitress\nFlask[async]>=3.0\n", "flask"));
        assert!(lists_package("dependencies = [\"flask>=2.3\"]", "flask"));
        assert!(lists_package("flask = \"^3.0\"", "flask"));
        assert!(!lists_package("flask-cors==4\n# flask\n", "flask"));
    }

    #[test]
    fn pyproject_dependencies() {
        assert!(pyproject_declares_dependencies(
            "[project]\ndependencies = [\n  \"flask\",\n]\n"
        ));
        assert!(pyproject_declares_dependencies(
            "[tool.poetry.dependencies]\npython = \"^3.11\"\n"
        ));
        assert!(!pyproject_declares_dependencies(
            "[project]\ndependencies = []\n"
        ));
    }

    // The FastAPI plugin's cases, from when it had its own copy of these rules.
    #[test]
    fn finds_fastapi() {
        assert!(lists_package(
            "uvicorn\nfastapi[standard]>=0.115\n",
            "fastapi"
        ));
        assert!(lists_package(
            "dependencies = [\"FastAPI>=0.100\"]",
            "fastapi"
        ));
        assert!(lists_package("fastapi = \"^0.110\"", "fastapi"));
        assert!(!lists_package("fastapi-users==12\n# fastapi\n", "fastapi"));
        assert!(!lists_package("[tool.fastapi]\n", "fastapi"));
    }

    #[test]
    fn pyproject_dependencies_of_a_fastapi_app() {
        assert!(pyproject_declares_dependencies(
            "[project]\ndependencies = [\n  \"fastapi\",\n]\n"
        ));
        assert!(pyproject_declares_dependencies(
            "[tool.poetry.dependencies]\npython = \"^3.11\"\n"
        ));
        assert!(!pyproject_declares_dependencies(
            "[project]\ndependencies = []\n"
        ));
        assert!(!pyproject_declares_dependencies(
            "[tool.ruff]\nline-length = 100\n"
        ));
    }

    #[test]
    fn nearest_manifest_wins() {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            ("requirements.txt", "flask\n"),
            ("backend/requirements.txt", "flask\n"),
            ("backend/app/app.py", ""),
            (
                "svc/pyproject.toml",
                "[project]\ndependencies = [\"flask\"]\n",
            ),
            ("svc/app/app.py", ""),
        ] {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        let project = Project::open(dir.path()).unwrap();
        assert_eq!(
            requirements(&project, "backend/app"),
            [PathBuf::from("backend/requirements.txt")]
        );
        assert_eq!(
            requirements(&project, "svc/app"),
            [PathBuf::from("requirements.txt")]
        );
        assert_eq!(
            requirements(&project, ""),
            [PathBuf::from("requirements.txt")]
        );
        assert_eq!(
            manifest_listing(&project, "flask").as_deref(),
            Some("requirements.txt")
        );
    }
}
