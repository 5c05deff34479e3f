//! Turning a path as an upload spells it into a safe, normalised, project-relative path, or
//! saying which path rule it breaks.

use super::error::UploadError;
use super::limits::{MAX_NAME_BYTES, MAX_PATH_BYTES, MAX_PATH_DEPTH};

/// A checked project-relative path: `/`-separated, non-empty components, none of them `.` or
/// `..`, no control characters, within the length and depth limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ProjectPath(String);

impl ProjectPath {
    /// The path with `/` separators.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The first component (the top-level file or folder).
    pub(crate) fn first(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    /// Whether the path has a single component (a top-level file or folder).
    pub(crate) fn is_top_level(&self) -> bool {
        !self.0.contains('/')
    }

    /// The path without its first component, `None` for a top-level path.
    pub(crate) fn without_first(&self) -> Option<ProjectPath> {
        self.0
            .split_once('/')
            .map(|(_, rest)| ProjectPath(rest.to_owned()))
    }

    /// Every proper ancestor, shortest first: `a`, `a/b` for `a/b/c`.
    pub(crate) fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(at, _)| &self.0[..at])
    }

    /// Whether this is junk that archivers add and a project never needs: anything under a
    /// `__MACOSX` folder (macOS resource forks) and `.DS_Store` files (Finder metadata).
    pub(crate) fn is_junk(&self) -> bool {
        self.0.split('/').any(|part| part == "__MACOSX")
            || self.0.rsplit('/').next() == Some(".DS_Store")
    }
}

/// Checks and normalises the path of a file as written by an upload (see [`normalize`]).
pub(crate) fn file_path(raw: &str) -> Result<ProjectPath, UploadError> {
    normalize(raw, false)?.ok_or_else(|| UploadError::InvalidPath {
        path: shown(raw),
        reason: "a file path may not be empty",
    })
}

/// Checks and normalises the path of a folder as written by an upload (see [`normalize`]);
/// `None` when it names the project folder itself (`./`).
pub(crate) fn dir_path(raw: &str) -> Result<Option<ProjectPath>, UploadError> {
    normalize(raw, true)
}

/// Checks and normalises `raw` as written by an upload.
///
/// `\` counts as a separator (zips made on Windows use it) and `.` components are dropped (so a
/// leading `./` goes). Refused: a NUL or other control character, an absolute path (`/x`,
/// `C:\x`, `\\server\x`), a `..` component, an empty component (`a//b`), too long or too deep a
/// path. A directory (`is_dir`) may end with one `/`; a file may not. A path with no component
/// left (``, `.`, `./`) gives `None`.
fn normalize(raw: &str, is_dir: bool) -> Result<Option<ProjectPath>, UploadError> {
    let invalid = |reason| UploadError::InvalidPath {
        path: shown(raw),
        reason,
    };
    if raw.contains('\0') {
        return Err(invalid("a path may not contain a NUL byte"));
    }
    if raw.chars().any(char::is_control) {
        return Err(invalid(
            "a path may not contain control characters (newlines, tabs...)",
        ));
    }
    let unified = raw.replace('\\', "/");
    let bytes = unified.as_bytes();
    let has_drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if unified.starts_with('/') || has_drive {
        return Err(UploadError::AbsolutePath { path: shown(raw) });
    }
    let body = match unified.strip_suffix('/') {
        Some(body) if is_dir => body,
        Some(_) => return Err(invalid("a file path may not end with `/`")),
        None => unified.as_str(),
    };
    let mut parts = Vec::new();
    for part in body.split('/') {
        match part {
            "." => {}
            ".." => return Err(UploadError::PathTraversal { path: shown(raw) }),
            "" if body.is_empty() => {}
            "" => return Err(invalid("a path may not contain an empty segment (`//`)")),
            name if name.len() > MAX_NAME_BYTES => {
                return Err(invalid(
                    "a file or folder name may be at most 255 bytes long",
                ));
            }
            name => parts.push(name),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    if parts.len() > MAX_PATH_DEPTH {
        return Err(invalid("a path may be at most 64 folders deep"));
    }
    let joined = parts.join("/");
    if joined.len() > MAX_PATH_BYTES {
        return Err(invalid("a path may be at most 1024 bytes long"));
    }
    Ok(Some(ProjectPath(joined)))
}

/// The raw bytes of an archive entry's name as text; they must be UTF-8.
pub(crate) fn utf8_name(raw: &[u8]) -> Result<&str, UploadError> {
    std::str::from_utf8(raw).map_err(|_| UploadError::InvalidPath {
        path: shown(&String::from_utf8_lossy(raw)),
        reason: "a path must be valid UTF-8",
    })
}

/// Longest path an error message repeats, in characters.
const SHOWN_CHARS: usize = 200;

/// `raw` fit for an error message: control characters escaped, cut after 200 characters.
pub(crate) fn shown(raw: &str) -> String {
    let mut out = String::new();
    for (count, c) in raw.chars().enumerate() {
        if count == SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(raw: &str) -> Result<String, &'static str> {
        file_path(raw)
            .map(|path| path.as_str().to_owned())
            .map_err(|error| error.code())
    }

    fn dir(raw: &str) -> Result<Option<String>, &'static str> {
        dir_path(raw)
            .map(|path| path.map(|path| path.as_str().to_owned()))
            .map_err(|error| error.code())
    }

    /// Ordinary relative paths pass unchanged; `./` and `.` components go.
    #[test]
    fn ordinary_paths_pass() {
        assert_eq!(file("app/main.py"), Ok("app/main.py".into()));
        assert_eq!(file("./app/main.py"), Ok("app/main.py".into()));
        assert_eq!(file("app/./main.py"), Ok("app/main.py".into()));
        assert_eq!(file(".env"), Ok(".env".into()));
        assert_eq!(file(".git/config"), Ok(".git/config".into()));
        assert_eq!(file("..."), Ok("...".into()));
    }

    /// Backslashes are separators, as in zips made on Windows.
    #[test]
    fn backslashes_are_separators() {
        assert_eq!(
            file("app\\routes\\users.py"),
            Ok("app/routes/users.py".into())
        );
        assert_eq!(file("..\\evil.py"), Err("path_traversal"));
    }

    /// Every spelling of an absolute path is refused.
    #[test]
    fn absolute_paths_are_refused() {
        for raw in [
            "/etc/passwd",
            "C:\\Windows\\x.dll",
            "c:/x",
            "C:x",
            "\\\\server\\share\\x",
            "//x",
        ] {
            assert_eq!(file(raw), Err("absolute_path"), "{raw}");
        }
    }

    /// A `..` component anywhere is refused, even when it would stay inside.
    #[test]
    fn dot_dot_is_refused_anywhere() {
        for raw in ["../x", "a/../../x", "a/../b", "a/..", ".."] {
            assert_eq!(file(raw), Err("path_traversal"), "{raw}");
        }
    }

    /// Empty paths, empty segments, NUL and control characters are invalid.
    #[test]
    fn malformed_paths_are_invalid() {
        for raw in ["", ".", "./", "a//b", "a/", "a\0b", "a\nb", "a\u{7f}"] {
            assert_eq!(file(raw), Err("invalid_path"), "{raw:?}");
        }
    }

    /// Directory entries may end with `/`; the project folder itself gives `None`.
    #[test]
    fn directory_entries() {
        assert_eq!(dir("app/"), Ok(Some("app".into())));
        assert_eq!(dir("./"), Ok(None));
        assert_eq!(dir("."), Ok(None));
        assert_eq!(dir("/"), Err("absolute_path"));
    }

    /// Too long, too deep, and too long a name are refused.
    #[test]
    fn length_and_depth_limits() {
        let deep = vec!["d"; MAX_PATH_DEPTH + 1].join("/");
        assert_eq!(file(&deep), Err("invalid_path"));
        let deep_ok = vec!["d"; MAX_PATH_DEPTH].join("/");
        assert!(file(&deep_ok).is_ok());
        let long = vec!["x".repeat(200); 6].join("/");
        assert_eq!(file(&long), Err("invalid_path"));
        assert_eq!(file(&"n".repeat(256)), Err("invalid_path"));
    }

    /// Non-UTF-8 names are invalid paths, not panics.
    #[test]
    fn non_utf8_bytes_are_invalid() {
        let error = utf8_name(b"caf\xe9.py").err().map(|error| error.code());
        assert_eq!(error, Some("invalid_path"));
        assert_eq!(utf8_name(b"app/main.py").ok(), Some("app/main.py"));
    }

    /// Junk is recognised by folder and file name only.
    #[test]
    fn junk_detection() {
        let junk = |raw| file_path(raw).is_ok_and(|path| path.is_junk());
        assert!(junk("__MACOSX/._main.py"));
        assert!(junk("proj/__MACOSX/x"));
        assert!(junk("proj/.DS_Store"));
        assert!(!junk("proj/DS_Store"));
        assert!(!junk("proj/main.py"));
    }

    /// Ancestors come shortest first; error messages cut long paths.
    #[test]
    fn ancestors_and_shown() {
        let path = file_path("a/b/c").ok();
        let ancestors: Vec<_> = path.iter().flat_map(|path| path.ancestors()).collect();
        assert_eq!(ancestors, ["a", "a/b"]);
        assert_eq!(shown(&"x".repeat(500)).chars().count(), SHOWN_CHARS + 1);
        assert_eq!(shown("a\nb"), "a\\nb");
    }
}
