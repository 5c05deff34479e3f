//! Building a cache directory (an env, the uv tool venv) so that nobody ever uses a half-built
//! one: it is built in a [`crate::cache_build::PartialDir`] next to its final path, gets a ready
//! marker describing the build, and is renamed into place only when complete (a directory is
//! ready when it has the marker and a working `bin/python`). Also here: what a crash leaves
//! behind is removed, and the paths pip wrote into scripts are pointed at the final directory.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::ProvisionError;
use crate::cache_build::{Finish, PartialDir, READY_MARKER};

/// A `.partial-` dir younger than this may belong to a live build in another process.
const MIN_STALE_PARTIAL_AGE: Duration = Duration::from_secs(3600);
/// Files in a venv's `bin` larger than this are programs, not scripts: they never hold the build
/// path, and reading them costs time (uv itself is about 40 MB).
const MAX_SCRIPT_SIZE: u64 = 1 << 20;

/// Writes the ready marker (`marker`, JSON describing the build) into `partial` and renames it
/// to its final path.
pub(super) async fn finish(
    partial: PartialDir,
    marker: &serde_json::Value,
) -> Result<Finish, ProvisionError> {
    write_file(
        &partial.path().join(READY_MARKER),
        marker.to_string().as_bytes(),
    )
    .await?;
    let target = partial.target().to_path_buf();
    partial
        .finish(is_ready)
        .await
        .map_err(|source| ProvisionError::Io {
            path: target,
            source,
        })
}

/// Whether `dir` is a finished venv: it has the ready marker and a working `bin/python` link.
pub(super) async fn is_ready(dir: &Path) -> bool {
    tokio::fs::metadata(dir.join(READY_MARKER)).await.is_ok()
        && tokio::fs::metadata(dir.join("bin").join("python"))
            .await
            .is_ok()
}

/// Whether `dir` has the ready marker, without touching anything else (for synchronous callers
/// that only want a hint).
pub(super) fn has_ready_marker(dir: &Path) -> bool {
    dir.join(READY_MARKER).is_file()
}

/// Removes an unfinished `dir` (the caller knows it is not ready) and the `.partial-` dirs next
/// to it old enough that no live build can own them (crash leftovers): older than an hour and
/// than three times `step_timeout`.
pub(super) async fn discard_leftovers(
    dir: &Path,
    step_timeout: Duration,
) -> Result<(), ProvisionError> {
    if tokio::fs::symlink_metadata(dir).await.is_ok() {
        tracing::info!(dir = %dir.display(), "discarding an unfinished build");
        remove_dir(dir).await?;
    }
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let stale_after = MIN_STALE_PARTIAL_AGE.max(step_timeout * 3);
    let Ok(mut entries) = tokio::fs::read_dir(parent).await else {
        return Ok(());
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if !entry.file_name().to_string_lossy().contains(".partial-") {
            continue;
        }
        let age = entry
            .metadata()
            .await
            .ok()
            .and_then(|meta| meta.modified().ok())
            .and_then(|modified| modified.elapsed().ok());
        if age.is_some_and(|age| age > stale_after) {
            let path = entry.path();
            tracing::info!(dir = %path.display(), "discarding a stale partial build");
            if let Err(error) = remove_dir(&path).await {
                tracing::warn!(%error, "could not remove a stale partial build");
            }
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch, for the `built_at_unix` of ready markers.
pub(super) fn unix_time_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// Writes `contents` to `path`.
pub(super) async fn write_file(path: &Path, contents: &[u8]) -> Result<(), ProvisionError> {
    tokio::fs::write(path, contents)
        .await
        .map_err(|source| ProvisionError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Removes `path` and everything under it; a missing `path` is fine.
pub(super) async fn remove_dir(path: &Path) -> Result<(), ProvisionError> {
    match tokio::fs::remove_dir_all(path).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ProvisionError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Rewrites `from` to `to` in the regular files of `bin` that mention it (script shebangs,
/// activate scripts), so a pip-built venv works after its rename. Large files are skipped.
pub(super) async fn repoint_scripts(
    bin: &Path,
    from: &Path,
    to: &Path,
) -> Result<(), ProvisionError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProvisionError::Io { path, source }
    };
    let from = from.as_os_str().as_encoded_bytes();
    let to = to.as_os_str().as_encoded_bytes();
    let mut entries = tokio::fs::read_dir(bin).await.map_err(io(bin))?;
    while let Some(entry) = entries.next_entry().await.map_err(io(bin))? {
        let path = entry.path();
        // Not followed: symlinks (`python`) are left alone.
        let meta = entry.metadata().await.map_err(io(&path))?;
        if !meta.is_file() || meta.len() > MAX_SCRIPT_SIZE {
            continue;
        }
        let contents = tokio::fs::read(&path).await.map_err(io(&path))?;
        if let Some(rewritten) = replace_bytes(&contents, from, to) {
            tokio::fs::write(&path, rewritten)
                .await
                .map_err(io(&path))?;
        }
    }
    Ok(())
}

/// `haystack` with every `from` replaced by `to`, or `None` if it has none.
fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    if from.is_empty() || !haystack.windows(from.len()).any(|window| window == from) {
        return None;
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pip's build path in a shebang becomes the final path.
    #[test]
    fn replaces_bytes() {
        assert_eq!(
            replace_bytes(b"#!/c/k.partial-1/bin/python\n", b"/c/k.partial-1", b"/c/k"),
            Some(b"#!/c/k/bin/python\n".to_vec())
        );
        assert_eq!(replace_bytes(b"nothing", b"/c/k.partial-1", b"/c/k"), None);
    }

    /// Scripts are repointed; symlinks and programs too large to be scripts are left alone.
    #[tokio::test]
    async fn repoints_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("pip"), "#!/c/k.partial-1/bin/python\nimport pip\n").unwrap();
        let mut program = b"\x7fELF /c/k.partial-1 ".to_vec();
        program.resize(MAX_SCRIPT_SIZE as usize + 1, 0);
        std::fs::write(bin.join("uv"), &program).unwrap();
        std::os::unix::fs::symlink("/c/k.partial-1/bin/python3", bin.join("python")).unwrap();

        repoint_scripts(&bin, Path::new("/c/k.partial-1"), Path::new("/c/k"))
            .await
            .unwrap();
        let pip = std::fs::read_to_string(bin.join("pip")).unwrap();
        assert_eq!(pip, "#!/c/k/bin/python\nimport pip\n");
        assert_eq!(std::fs::read(bin.join("uv")).unwrap(), program);
        let link = std::fs::read_link(bin.join("python")).unwrap();
        assert_eq!(link, Path::new("/c/k.partial-1/bin/python3"));
    }

    /// The first rename wins; a second build of the same dir is discarded for it.
    #[tokio::test]
    async fn finishing_twice_keeps_the_first() {
        let cache = tempfile::tempdir().unwrap();
        let target = cache.path().join("key");
        let build = |label: &'static str| {
            let partial = PartialDir::new(&target);
            std::fs::create_dir_all(partial.path().join("bin")).unwrap();
            std::fs::write(partial.path().join("bin").join("python"), label).unwrap();
            partial
        };
        let (first, second) = (build("first"), build("second"));
        let second_path = second.path().to_path_buf();
        let marker = serde_json::json!({});
        assert_eq!(finish(first, &marker).await.unwrap(), Finish::Renamed);
        assert!(is_ready(&target).await);
        assert!(has_ready_marker(&target));
        assert_eq!(finish(second, &marker).await.unwrap(), Finish::AlreadyThere);
        assert!(!second_path.exists(), "the losing build is removed");
        let python = std::fs::read_to_string(target.join("bin").join("python")).unwrap();
        assert_eq!(python, "first");
    }
}
