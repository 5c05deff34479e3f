//! The one error type of the upload module: which rule an upload broke, on which path, and how
//! the HTTP layer should answer (`code` for the JSON body, `http_status` for the status line).

use std::io;

/// Why an upload was refused (or, for [`UploadError::Io`], why it could not be stored).
///
/// Every variant names the rule that was broken and, where there is one, the offending path as
/// the user wrote it (shortened when very long). Nothing of a refused upload is left on disk.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// A path has a `..` component.
    #[error("`{path}`: a path may not leave the project folder (`..`)")]
    PathTraversal {
        /// The offending path.
        path: String,
    },
    /// A path starts at the root of a disk (`/x`, `C:\x`, `\\server\x`).
    #[error(
        "`{path}`: absolute paths are not allowed; give a path relative to the project folder"
    )]
    AbsolutePath {
        /// The offending path.
        path: String,
    },
    /// A path is empty, too long, too deep, or holds a character or segment that cannot be a file
    /// name.
    #[error("`{path}`: {reason}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// What is wrong with it, as a sentence fragment.
        reason: &'static str,
    },
    /// An archive entry is a symbolic or hard link.
    #[error("`{path}`: links (symbolic or hard) are not allowed; upload the file itself")]
    LinkNotAllowed {
        /// The link's path.
        path: String,
    },
    /// An archive entry is a device file, a FIFO or a socket.
    #[error("`{path}`: device files, FIFOs and sockets are not allowed")]
    SpecialFileNotAllowed {
        /// The entry's path.
        path: String,
    },
    /// Two entries land on the same file.
    #[error("`{path}`: this file appears more than once in the upload")]
    DuplicatePath {
        /// The path given twice (as the second entry spelled it).
        path: String,
    },
    /// A zip's central directory lists the same entry name more than once.
    #[error("the zip archive lists the same entry name more than once")]
    DuplicateZipEntry,
    /// One entry is a file and another uses the same path as a folder (`a` and `a/b`).
    #[error("`{file}` is a file, but `{other}` uses it as a folder")]
    PathConflict {
        /// The path that is a file.
        file: String,
        /// The entry that needs it to be a folder.
        other: String,
    },
    /// More files (or folders) than [`UploadLimits::max_files`](super::UploadLimits).
    #[error("the upload holds more than {limit} {what}")]
    TooManyFiles {
        /// The limit that was passed.
        limit: usize,
        /// `"files"` or `"folders"`.
        what: &'static str,
    },
    /// One file is larger than [`UploadLimits::max_file_bytes`](super::UploadLimits).
    #[error("`{path}` is larger than the limit of {} for one file", human_bytes(*.limit))]
    FileTooLarge {
        /// The file.
        path: String,
        /// The limit that was passed, in bytes.
        limit: u64,
    },
    /// The files together are larger than [`UploadLimits::max_total_bytes`](super::UploadLimits).
    #[error("the upload is larger than the limit of {} in total", human_bytes(*.limit))]
    UploadTooLarge {
        /// The limit that was passed, in bytes.
        limit: u64,
    },
    /// A `.tar.gz` decompresses to more than its files' limit plus room for archive headers,
    /// in entries that are not files (skipped junk, headers): a likely archive bomb.
    #[error(
        "the archive decompresses to more than {} (the size limit plus room for archive \
         headers), so it is refused as a possible archive bomb",
        human_bytes(*.limit)
    )]
    ArchiveTooLarge {
        /// The cap on the decompressed stream, in bytes.
        limit: u64,
    },
    /// A file sent with `"encoding": "base64"` does not decode.
    #[error("`{path}`: the content is not valid base64 ({source})")]
    InvalidBase64 {
        /// The file.
        path: String,
        /// What the decoder objected to.
        #[source]
        source: base64::DecodeError,
    },
    /// The bytes are not a readable archive of the announced kind: garbage, truncated, or damaged.
    #[error("the archive is damaged or not of the announced kind: {detail}")]
    InvalidArchive {
        /// What the reader objected to, with the entry's path when there is one.
        detail: String,
    },
    /// The archive as a whole is not one previewd reads: the HTTP layer returns this when
    /// [`ArchiveKind::sniff`](super::ArchiveKind::sniff) gives `None`, the zip reader when a zip
    /// uses a feature it does not support (multi-disk archives, say).
    #[error("unsupported archive: {detail}; send a .tar.gz or a .zip")]
    UnsupportedArchive {
        /// What was received instead (a Content-Type, say).
        detail: String,
    },
    /// One archive entry uses a feature previewd does not read (encryption, an exotic compression
    /// method, a sparse or multi-volume tar entry).
    #[error("`{path}`: {reason}")]
    UnsupportedEntry {
        /// The entry.
        path: String,
        /// What is unsupported, as a sentence fragment.
        reason: String,
    },
    /// The upload holds no files (directories and skipped junk do not count).
    #[error("the upload contains no files")]
    EmptyUpload,
    /// Writing to the server's disk failed; the upload itself may be fine.
    #[error("could not write `{path}` into the project folder: {source}")]
    Io {
        /// The project-relative path being written (`.` for the project folder itself).
        path: String,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
}

impl UploadError {
    /// The snake_case reason for the JSON error body, e.g. `"path_traversal"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PathTraversal { .. } => "path_traversal",
            Self::AbsolutePath { .. } => "absolute_path",
            Self::InvalidPath { .. } => "invalid_path",
            Self::LinkNotAllowed { .. } => "link_not_allowed",
            Self::SpecialFileNotAllowed { .. } => "special_file_not_allowed",
            Self::DuplicatePath { .. } | Self::DuplicateZipEntry => "duplicate_path",
            Self::PathConflict { .. } => "path_conflict",
            Self::TooManyFiles { .. } => "too_many_files",
            Self::FileTooLarge { .. } => "file_too_large",
            Self::UploadTooLarge { .. } | Self::ArchiveTooLarge { .. } => "upload_too_large",
            Self::InvalidBase64 { .. } => "invalid_base64",
            Self::InvalidArchive { .. } => "invalid_archive",
            Self::UnsupportedArchive { .. } | Self::UnsupportedEntry { .. } => {
                "unsupported_archive"
            }
            Self::EmptyUpload => "empty_upload",
            Self::Io { .. } => "io_error",
        }
    }

    /// The HTTP status: 413 for a broken limit, 500 for a failure writing to the server's disk,
    /// 400 for everything else.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::TooManyFiles { .. }
            | Self::FileTooLarge { .. }
            | Self::UploadTooLarge { .. }
            | Self::ArchiveTooLarge { .. } => 413,
            Self::Io { .. } => 500,
            _ => 400,
        }
    }
}

/// `10 MiB` for an exact multiple of a binary unit, `7.8 MiB` for other sizes from 1 MiB up,
/// the plain byte count below.
fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (MIB, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        // Units are powers of two: a multiple has at least as many trailing zero bits.
        if bytes >= size && bytes.trailing_zeros() >= size.trailing_zeros() {
            return format!("{} {unit}", bytes / size);
        }
    }
    if bytes >= MIB {
        return format!("{:.1} MiB", bytes as f64 / MIB as f64);
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Limits render in binary units when they are round, in bytes otherwise.
    #[test]
    fn limits_render_readably() {
        assert_eq!(human_bytes(10 << 20), "10 MiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
        assert_eq!(human_bytes((1536 << 10) + 1), "1.5 MiB");
        let error = UploadError::FileTooLarge {
            path: "a.bin".into(),
            limit: 10 << 20,
        };
        assert_eq!(
            error.to_string(),
            "`a.bin` is larger than the limit of 10 MiB for one file"
        );
        assert_eq!(error.http_status(), 413);
    }

    /// The traversal message names the path and the rule.
    #[test]
    fn traversal_message_names_path_and_rule() {
        let error = UploadError::PathTraversal {
            path: "../etc/passwd".into(),
        };
        assert_eq!(
            error.to_string(),
            "`../etc/passwd`: a path may not leave the project folder (`..`)"
        );
        assert_eq!(error.code(), "path_traversal");
        assert_eq!(error.http_status(), 400);
    }
}
