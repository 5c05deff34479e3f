//! How much one upload may hold, and the derived caps the readers enforce while they stream.

/// Limits on what one upload may hold.
///
/// They apply to the files that are written: directories, and junk that archives carry along
/// (`__MACOSX/`, `.DS_Store`), are not files. Path rules are fixed: at most 1,024 bytes,
/// 64 components, and 255 bytes per file or folder name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Most files one upload may hold (also the most folders an archive may declare).
    pub max_files: usize,
    /// Largest size of one file, in bytes, after decoding or decompression.
    pub max_file_bytes: u64,
    /// Largest size of all files together, in bytes, after decoding or decompression.
    pub max_total_bytes: u64,
}

impl Default for UploadLimits {
    /// 2,000 files, 10 MiB per file, 50 MiB in total.
    fn default() -> Self {
        Self {
            max_files: 2_000,
            max_file_bytes: 10 << 20,
            max_total_bytes: 50 << 20,
        }
    }
}

/// Room per file for what a request or an archive carries besides the content: JSON quoting and
/// field names, tar headers, padding and long-name records, zip local and central headers.
const PER_FILE_OVERHEAD: u64 = 4 << 10;

/// Fixed room on top of the per-file overhead (tar end blocks, a pax global header, zip end of
/// central directory, the JSON envelope).
const FIXED_OVERHEAD: u64 = 1 << 20;

impl UploadLimits {
    /// The largest request body an upload within these limits can need; the HTTP layer should
    /// refuse bigger bodies (413) before reading them into memory.
    ///
    /// Sized for the worst honest case, a JSON upload whose files are all base64 (4 bytes per 3),
    /// which also covers an archive that did not compress at all.
    pub fn max_request_bytes(&self) -> u64 {
        self.max_total_bytes
            .saturating_add(2)
            .saturating_div(3)
            .saturating_mul(4)
            .saturating_add(self.overhead())
    }

    /// The most bytes a `.tar.gz` may decompress to: the files' limit plus room for headers.
    /// Counting the whole decompressed stream (not only file contents) stops bombs hidden in
    /// entries that are never written: skipped junk, pax headers, long-name records.
    pub(crate) fn max_stream_bytes(&self) -> u64 {
        self.max_total_bytes.saturating_add(self.overhead())
    }

    fn overhead(&self) -> u64 {
        u64::try_from(self.max_files)
            .unwrap_or(u64::MAX)
            .saturating_mul(PER_FILE_OVERHEAD)
            .saturating_add(FIXED_OVERHEAD)
    }
}

/// Longest path, in bytes, after normalisation.
pub(crate) const MAX_PATH_BYTES: usize = 1024;

/// Most components (folders plus the file name) in a path.
pub(crate) const MAX_PATH_DEPTH: usize = 64;

/// Longest single file or folder name, in bytes (the limit of common Linux file systems).
pub(crate) const MAX_NAME_BYTES: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults are the documented ones and the request cap covers base64 of the total.
    #[test]
    fn defaults_and_request_cap() {
        let limits = UploadLimits::default();
        assert_eq!(limits.max_files, 2_000);
        assert_eq!(limits.max_file_bytes, 10 * 1024 * 1024);
        assert_eq!(limits.max_total_bytes, 50 * 1024 * 1024);
        assert!(limits.max_request_bytes() > limits.max_total_bytes / 3 * 4);
        assert!(limits.max_stream_bytes() > limits.max_total_bytes);
    }

    /// Absurd limits saturate instead of overflowing.
    #[test]
    fn huge_limits_saturate() {
        let limits = UploadLimits {
            max_files: usize::MAX,
            max_file_bytes: u64::MAX,
            max_total_bytes: u64::MAX,
        };
        assert_eq!(limits.max_stream_bytes(), u64::MAX);
        assert!(limits.max_request_bytes() > 0);
    }
}
