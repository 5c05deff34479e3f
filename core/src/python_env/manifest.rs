//! A project's requirement manifests (`requirements*.txt`, `pyproject.toml`) as read from disk,
//! and what is read out of requirements-file text: its package lines, whether it points at other
//! local files, and the launcher's requirements with their pins removed (so that next to a
//! project's own pins the project's win). `pyproject.toml` contents are [`super::pyproject`]'s.

use std::path::{Path, PathBuf};

use super::ProvisionError;

/// One of the project's requirement manifests, read.
#[derive(Debug, Clone)]
pub(super) struct Manifest {
    /// As given, absolute.
    pub(super) path: PathBuf,
    /// The file name, e.g. `requirements.txt`; it says how the file is read.
    pub(super) name: String,
    /// The contents, part of the env key.
    pub(super) text: String,
}

impl Manifest {
    /// Reads the manifest at `path`.
    pub(super) async fn read(path: &Path) -> Result<Manifest, ProvisionError> {
        let text =
            tokio::fs::read_to_string(path)
                .await
                .map_err(|source| ProvisionError::Manifest {
                    path: path.to_path_buf(),
                    source,
                })?;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Manifest {
            path: path.to_path_buf(),
            name,
            text,
        })
    }

    /// Whether this is a `pyproject.toml` (else a requirements file).
    pub(super) fn is_pyproject(&self) -> bool {
        self.name == "pyproject.toml"
    }
}

/// A requirements-file line without its comment, trimmed.
fn requirement_line(line: &str) -> &str {
    let line = line.trim();
    if line.starts_with('#') {
        return "";
    }
    let end = [" #", "\t#"]
        .iter()
        .filter_map(|marker| line.find(marker))
        .min()
        .unwrap_or(line.len());
    line[..end].trim_end()
}

/// The requirement lines of a requirements file (options other than `-e` are not packages).
fn requirement_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(requirement_line).filter(|line| {
        !line.is_empty()
            && (!line.starts_with('-') || line.starts_with("-e") || line.starts_with("--editable"))
    })
}

/// How many packages a requirements file lists.
pub(super) fn count_requirements(text: &str) -> usize {
    requirement_lines(text).count()
}

/// `fastapi==0.165.0, uvicorn[standard]==0.54.0`, for progress lines.
pub(super) fn requirement_names(text: &str) -> String {
    requirement_lines(text).collect::<Vec<_>>().join(", ")
}

/// The base requirements without version pins, for installing next to a project's own pins:
/// `uvicorn[standard]==0.54.0; python_version >= "3.8"` becomes
/// `uvicorn[standard]; python_version >= "3.8"`. Options and direct references (`name @ url`)
/// stay as they are; comments go.
pub(super) fn unpinned(base: &str) -> String {
    let mut out = String::new();
    for line in base
        .lines()
        .map(requirement_line)
        .filter(|line| !line.is_empty())
    {
        out.push_str(&unpin(line));
        out.push('\n');
    }
    out
}

/// One requirement line without its version specifiers.
fn unpin(line: &str) -> String {
    if line.starts_with('-') {
        return line.to_string();
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(name_end);
    let rest_trimmed = rest.trim_start();
    let (extras, rest) = match rest_trimmed.strip_prefix('[').and_then(|r| r.find(']')) {
        Some(close) => rest_trimmed.split_at(close + 2),
        None => ("", rest_trimmed),
    };
    if rest.trim_start().starts_with('@') {
        return line.to_string();
    }
    match rest.split_once(';') {
        Some((_, marker)) => format!("{name}{extras}; {}", marker.trim()),
        None => format!("{name}{extras}"),
    }
}

/// Whether a requirements file refers to other files (`-r`, `-c`, editable or path installs),
/// whose contents the key cannot see.
pub(super) fn refers_to_local_files(text: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "-r",
        "--requirement",
        "-c",
        "--constraint",
        "-e",
        "--editable",
        ".",
        "/",
        "~",
        "file:",
    ];
    text.lines()
        .map(requirement_line)
        .any(|line| PREFIXES.iter().any(|p| line.starts_with(p)) || line.contains("@ file:"))
}

/// Inputs shared by the tests of the modules that plan and key envs.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    /// Launcher requirements like `runtimes/python/requirements.txt`.
    pub(in super::super) const BASE: &str =
        "# launcher needs\nfastapi==0.165.0\nuvicorn[standard]==0.54.0\n";

    /// A manifest `name` of the project `/project`, holding `text`.
    pub(in super::super) fn manifest(name: &str, text: &str) -> Manifest {
        Manifest {
            path: PathBuf::from("/project").join(name),
            name: name.into(),
            text: text.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::BASE;
    use super::*;

    /// Pins go, extras and markers stay, options and direct references are untouched.
    #[test]
    fn base_pins_are_stripped() {
        assert_eq!(unpinned(BASE), "fastapi\nuvicorn[standard]\n");
        assert_eq!(
            unpinned("httpx >= 0.27, < 1  # client\nuvloop==0.21; sys_platform != \"win32\"\n"),
            "httpx\nuvloop; sys_platform != \"win32\"\n"
        );
        assert_eq!(
            unpinned("uvicorn [standard] ~= 0.54\n"),
            "uvicorn[standard]\n"
        );
        assert_eq!(
            unpinned("--index-url https://example.org/simple\npkg @ https://example.org/pkg.whl\n"),
            "--index-url https://example.org/simple\npkg @ https://example.org/pkg.whl\n"
        );
    }

    /// Comments, blank lines and options other than `-e` are not packages.
    #[test]
    fn counts_requirements() {
        assert_eq!(
            count_requirements("a\n\n# b\n -r x.txt\n--pre\n-e .\nc  # d\n"),
            3
        );
        assert_eq!(
            requirement_names(BASE),
            "fastapi==0.165.0, uvicorn[standard]==0.54.0"
        );
    }

    /// References to other files are found; the same text in a comment is not one.
    #[test]
    fn finds_local_references() {
        for text in [
            "-e .\n",
            "-r base.txt\n",
            "./libs/pkg\n",
            "pkg @ file:///x\n",
        ] {
            assert!(refers_to_local_files(text), "{text}");
        }
        assert!(!refers_to_local_files("requests  # -e . in a comment\n"));
    }
}
