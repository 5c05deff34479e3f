//! The launcher scripts previewd ships with itself (`runtimes/` in the source tree), embedded in
//! the binary and written out under the data dir at start-up, so an installed previewd needs no
//! source checkout to run.

use std::path::{Path, PathBuf};

/// The Python launcher and the per-framework serving modules it loads, by file name.
const PYTHON_FILES: &[(&str, &str)] = &[
    (
        "launcher.py",
        include_str!("../../runtimes/python/launcher.py"),
    ),
    (
        "serve_fastapi.py",
        include_str!("../../runtimes/python/serve_fastapi.py"),
    ),
    (
        "serve_flask.py",
        include_str!("../../runtimes/python/serve_flask.py"),
    ),
    (
        "serve_django.py",
        include_str!("../../runtimes/python/serve_django.py"),
    ),
];

/// The Node launcher and the route-table module it loads, by file name.
const NODE_FILES: &[(&str, &str)] = &[
    (
        "launcher.js",
        include_str!("../../runtimes/node/launcher.js"),
    ),
    (
        "route_table.js",
        include_str!("../../runtimes/node/route_table.js"),
    ),
];

/// The packages the launcher needs for each framework, pinned (installed as they are into the
/// shared base environment, unpinned beside a project's own requirements).
const PYTHON_REQUIREMENTS: &[(&str, &str)] = &[
    (
        "fastapi",
        include_str!("../../runtimes/python/requirements/fastapi.txt"),
    ),
    (
        "flask",
        include_str!("../../runtimes/python/requirements/flask.txt"),
    ),
    (
        "django",
        include_str!("../../runtimes/python/requirements/django.txt"),
    ),
];

/// The launcher's packages for `framework`; an ASGI stack (FastAPI's) for frameworks previewd
/// does not know, since that is what the launcher serves unknown Python apps with.
pub fn python_requirements(framework: &str) -> &'static str {
    PYTHON_REQUIREMENTS
        .iter()
        .find(|(name, _)| *name == framework)
        .unwrap_or(&PYTHON_REQUIREMENTS[0])
        .1
}

/// Where the launchers were written.
#[derive(Debug, Clone)]
pub struct Runtimes {
    dir: PathBuf,
}

impl Runtimes {
    /// Writes the launchers into `dir` (rewriting them only when their content changed).
    pub fn install(dir: &Path) -> std::io::Result<Runtimes> {
        let python = dir.join("python");
        std::fs::create_dir_all(&python)?;
        for (name, content) in PYTHON_FILES {
            write_if_changed(&python.join(name), content)?;
        }
        let node = dir.join("node");
        std::fs::create_dir_all(&node)?;
        for (name, content) in NODE_FILES {
            write_if_changed(&node.join(name), content)?;
        }
        Ok(Runtimes {
            dir: dir.to_path_buf(),
        })
    }

    /// The Python launcher script.
    pub fn python_launcher(&self) -> PathBuf {
        self.dir.join("python").join("launcher.py")
    }

    /// The Node launcher script.
    pub fn node_launcher(&self) -> PathBuf {
        self.dir.join("node").join("launcher.js")
    }
}

fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    // Write beside and rename, so a launcher being started never reads half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, content)?;
    std::fs::rename(partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every framework's requirements pin what they install; unknown frameworks get FastAPI's.
    #[test]
    fn requirements_per_framework() {
        assert!(python_requirements("fastapi").contains("uvicorn"));
        assert_eq!(
            python_requirements("starlette"),
            python_requirements("fastapi")
        );
    }

    /// The files are written once and rewritten only when they change.
    #[test]
    fn install_writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let runtimes = Runtimes::install(dir.path()).unwrap();
        assert!(runtimes.python_launcher().is_file());
        for (name, _) in PYTHON_FILES {
            assert!(dir.path().join("python").join(name).is_file(), "{name}");
        }
        assert!(runtimes.node_launcher().is_file());
        for (name, _) in NODE_FILES {
            assert!(dir.path().join("node").join(name).is_file(), "{name}");
        }
        Runtimes::install(dir.path()).unwrap();
    }
}
