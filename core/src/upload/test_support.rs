//! Helpers shared by the archive tests.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{extract_archive, ArchiveKind, UploadLimits, UploadSummary};

/// Extracts `bytes` into a fresh folder. On refusal, checks that the folder does not exist and
/// returns the error code; on success, returns the temporary parent (keep it alive), the folder
/// and the summary.
pub(crate) fn try_extract(
    bytes: &[u8],
    kind: ArchiveKind,
    limits: &UploadLimits,
) -> Result<(TempDir, PathBuf, UploadSummary), &'static str> {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    match extract_archive(bytes, kind, &dest, limits) {
        Ok(summary) => Ok((tmp, dest, summary)),
        Err(error) => {
            assert!(
                !dest.exists(),
                "a refused upload ({error}) left {dest:?} behind"
            );
            Err(error.code())
        }
    }
}

/// Every file under `root`, as sorted `/`-separated relative paths.
pub(crate) fn files_in(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                found.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}
