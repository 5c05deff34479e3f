//! The destination folder while an upload is written into it: created fresh, filled only with
//! regular files and folders made here (so no link can redirect a write), and removed again
//! unless the whole upload made it in.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::error::UploadError;
use super::limits::UploadLimits;
use super::paths::ProjectPath;
use super::plan::PlannedFile;
use super::UploadSummary;

/// Mode of written folders.
const DIR_MODE: u32 = 0o755;
/// Mode of written files.
const FILE_MODE: u32 = 0o644;
/// Mode of written files the upload marked executable (scripts).
const EXEC_MODE: u32 = 0o755;
/// Size of the copy buffer.
const CHUNK: usize = 64 << 10;

/// A destination folder being filled; dropping it before [`Staging::commit`] removes it.
pub(crate) struct Staging<'a> {
    root: &'a Path,
    limits: &'a UploadLimits,
    summary: UploadSummary,
    committed: bool,
}

impl<'a> Staging<'a> {
    /// Creates `root` (its parent is created if missing); fails if `root` already exists, which
    /// is then left alone.
    pub(crate) fn create(root: &'a Path, limits: &'a UploadLimits) -> Result<Self, UploadError> {
        let at_root = |source| UploadError::Io {
            path: ".".into(),
            source,
        };
        if let Some(parent) = root.parent() {
            fs::create_dir_all(parent).map_err(at_root)?;
        }
        DirBuilder::new()
            .mode(DIR_MODE)
            .create(root)
            .map_err(at_root)?;
        let staging = Self {
            root,
            limits,
            summary: UploadSummary {
                file_count: 0,
                total_bytes: 0,
            },
            committed: false,
        };
        fs::set_permissions(root, Permissions::from_mode(DIR_MODE)).map_err(at_root)?;
        Ok(staging)
    }

    /// Creates the folder `path` and any missing parents.
    pub(crate) fn create_dir(&self, path: &ProjectPath) -> Result<(), UploadError> {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(self.root.join(path.as_str()))
            .map_err(|source| UploadError::Io {
                path: path.as_str().to_owned(),
                source,
            })
    }

    /// Writes `file` with the bytes `content` yields, counting them against the limits as they
    /// arrive (whatever size was declared). A failure to read becomes `on_read_error(e)`.
    pub(crate) fn write_file(
        &mut self,
        file: &PlannedFile,
        content: &mut dyn Read,
        on_read_error: &dyn Fn(io::Error) -> UploadError,
    ) -> Result<(), UploadError> {
        let name = file.path.as_str();
        let io_error = |source| UploadError::Io {
            path: name.to_owned(),
            source,
        };
        if let Some(parent) = file.path.ancestors().last() {
            DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(self.root.join(parent))
                .map_err(io_error)?;
        }
        let mode = if file.executable {
            EXEC_MODE
        } else {
            FILE_MODE
        };
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(self.root.join(name))
            .map_err(io_error)?;
        let limits = self.limits;
        let room = limits
            .max_total_bytes
            .saturating_sub(self.summary.total_bytes);
        let allowed = limits.max_file_bytes.min(room);
        let mut buffer = vec![0; CHUNK];
        let mut written: u64 = 0;
        loop {
            // Ask for at most one byte past what is allowed: that byte proves the excess.
            let want = allowed.saturating_sub(written).saturating_add(1);
            let want = usize::try_from(want).unwrap_or(CHUNK).min(CHUNK);
            let count = match content.read(&mut buffer[..want]) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(on_read_error(error)),
            };
            written = written.saturating_add(count as u64);
            if written > allowed {
                return Err(if limits.max_file_bytes <= room {
                    UploadError::FileTooLarge {
                        path: name.to_owned(),
                        limit: limits.max_file_bytes,
                    }
                } else {
                    UploadError::UploadTooLarge {
                        limit: limits.max_total_bytes,
                    }
                });
            }
            out.write_all(&buffer[..count]).map_err(io_error)?;
        }
        out.set_permissions(Permissions::from_mode(mode))
            .map_err(io_error)?;
        self.summary.file_count += 1;
        self.summary.total_bytes += written;
        Ok(())
    }

    /// Keeps the folder and reports what was written.
    pub(crate) fn commit(mut self) -> UploadSummary {
        self.committed = true;
        self.summary.clone()
    }
}

impl Drop for Staging<'_> {
    /// Removes the folder (best effort) unless the upload was committed.
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::paths::file_path;

    fn planned(raw: &str) -> PlannedFile {
        PlannedFile {
            source: 0,
            path: file_path(raw).unwrap(),
            executable: false,
        }
    }

    /// A reader that counts the bytes it hands out.
    struct Counted<R> {
        inner: R,
        taken: u64,
    }

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let count = self.inner.read(buf)?;
            self.taken += count as u64;
            Ok(count)
        }
    }

    fn damaged(error: io::Error) -> UploadError {
        UploadError::InvalidArchive {
            detail: error.to_string(),
        }
    }

    /// Content is counted as it arrives, whatever was declared: reading stops one byte past the
    /// binding limit (room left in the total, or the per-file limit), and the folder goes away
    /// on drop.
    #[test]
    fn content_is_counted_not_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        let limits = UploadLimits {
            max_files: 10,
            max_file_bytes: 100,
            max_total_bytes: 150,
        };
        let mut staging = Staging::create(&dest, &limits).unwrap();
        let mut first = io::repeat(b'x').take(100);
        staging
            .write_file(&planned("a/one.txt"), &mut first, &damaged)
            .unwrap();
        let mut counted = Counted {
            inner: io::repeat(b'x'),
            taken: 0,
        };
        let error = staging
            .write_file(&planned("two.txt"), &mut counted, &damaged)
            .unwrap_err();
        assert_eq!(error.code(), "upload_too_large");
        assert_eq!(counted.taken, 51, "read one byte past the 50 bytes of room");
        drop(staging);
        assert!(!dest.exists());

        let mut staging = Staging::create(&dest, &limits).unwrap();
        let mut counted = Counted {
            inner: io::repeat(b'x'),
            taken: 0,
        };
        let error = staging
            .write_file(&planned("one.txt"), &mut counted, &damaged)
            .unwrap_err();
        assert_eq!(error.code(), "file_too_large");
        assert_eq!(
            counted.taken, 101,
            "read one byte past the 100-byte file limit"
        );
        drop(staging);
        assert!(!dest.exists());
    }

    /// An existing destination is refused with an I/O error and left in place.
    #[test]
    fn existing_destination_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let limits = UploadLimits::default();
        let error = Staging::create(tmp.path(), &limits).err().unwrap();
        assert_eq!(error.http_status(), 500);
        assert!(tmp.path().exists());
    }

    /// Committed folders stay, with the requested modes.
    #[test]
    fn commit_keeps_files_with_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("nested/dest");
        let limits = UploadLimits::default();
        let mut staging = Staging::create(&dest, &limits).unwrap();
        let mut script = planned("bin/run.sh");
        script.executable = true;
        staging
            .write_file(&script, &mut &b"hi"[..], &damaged)
            .unwrap();
        let summary = staging.commit();
        assert_eq!(
            summary,
            UploadSummary {
                file_count: 1,
                total_bytes: 2
            }
        );
        let mode = fs::metadata(dest.join("bin/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }
}
