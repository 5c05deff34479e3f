//! Uploads: checking a generation's files and writing them into a fresh folder.
//!
//! A user's project arrives either as JSON (a list of files, text or base64) or as an archive
//! (`.tar.gz` or `.zip`). Both are hostile input: this module owns every rule that keeps an
//! upload inside its folder and within its limits, so the HTTP layer only converts requests and
//! maps [`UploadError`] to a status and a JSON body.
//!
//! The rules: paths are relative and normalised (`\` is a separator, a leading `./` is dropped),
//! never absolute, never with a `..` component, at most 1,024 bytes and 64 components; no links,
//! devices, FIFOs or sockets; no path twice, and no file that another entry uses as a folder;
//! limits on the number of files, on one file's size and on the total ([`UploadLimits`]),
//! counted on the bytes that actually come out of a decoder or decompressor, so an archive bomb
//! is stopped early; at least one file. Everything is checked before anything is written
//! (archives are read once to check and once to write), files are written by this module as
//! new regular files (`0644`, or `0755` when the archive marked them executable), and a
//! refused upload leaves nothing behind.
//!
//! # Layout
//! - `paths`: one path from an upload to a checked project-relative path.
//! - `plan`: the list of files and folders to write, with counts, sizes, duplicates, conflicts.
//! - `staging`: the destination folder while it is filled; removed unless committed.
//! - `json`, `tar_gz`, `zip_archive`: the three ways in.
//! - `kind`: telling `.tar.gz` from `.zip`.
//! - `limits`, `error`: the configuration and the one error type.

mod error;
mod json;
mod kind;
mod limits;
mod paths;
mod plan;
mod staging;
mod tar_gz;
#[cfg(test)]
mod test_support;
mod zip_archive;

use std::path::Path;

pub use error::UploadError;
pub use json::{Encoding, UploadFile};
pub use kind::ArchiveKind;
pub use limits::UploadLimits;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSummary {
    /// How many files (folders not counted).
    pub file_count: usize,
    /// Their total size in bytes.
    pub total_bytes: u64,
}

/// Writes the files of a JSON upload into `dest`, which must not exist yet and is created by
/// this call (with any missing parent).
///
/// All checks, base64 decoding included, run before `dest` is created; on any error `dest` does
/// not exist afterwards (an existing `dest` is refused with [`UploadError::Io`] and left alone).
/// Paths are taken exactly as given: no junk skipping and no folder stripping, unlike
/// [`extract_archive`]. Files are written `0644`.
pub fn write_files(
    files: &[UploadFile],
    dest: &Path,
    limits: &UploadLimits,
) -> Result<UploadSummary, UploadError> {
    json::write_files(files, dest, limits)
}

/// Extracts an archive into `dest`, which must not exist yet and is created by this call (with
/// any missing parent).
///
/// Every entry is checked (type, path, declared size, counts) before `dest` is created; the
/// contents are then counted again as they are decompressed, never trusting declared sizes, so
/// a gzip or zip bomb is stopped after a bounded amount of output. On any error `dest` is removed
/// entirely (the caller passes a fresh staging folder and renames it into place on success).
///
/// Beyond the module's rules:
/// - **A single top-level folder is stripped.** When every entry lives under the same one
///   top-level folder (`project-main/...`, as in archives downloaded from GitHub), that folder
///   is removed from all paths, so the project's files land directly in `dest`.
/// - **Junk is skipped, not refused.** Anything under a `__MACOSX/` folder and any `.DS_Store`
///   file is not written and does not count towards the limits on files (its bytes still count
///   towards the cap on the decompressed stream).
/// - Folder entries create folders (empty ones included) and count, as folders, against
///   [`UploadLimits::max_files`]. Tar `pax_global_header` entries (written by `git archive`) are
///   ignored. Encrypted zip entries, zip compression other than Store and Deflate, and tar entry
///   types other than files, folders, links and devices are refused as unsupported.
/// - A file is written `0755` if the archive gave it any executable bit, `0644` otherwise;
///   owners, times and special bits are not kept.
pub fn extract_archive(
    archive: &[u8],
    kind: ArchiveKind,
    dest: &Path,
    limits: &UploadLimits,
) -> Result<UploadSummary, UploadError> {
    match kind {
        ArchiveKind::TarGz => tar_gz::extract(archive, dest, limits),
        ArchiveKind::Zip => zip_archive::extract(archive, dest, limits),
    }
}
