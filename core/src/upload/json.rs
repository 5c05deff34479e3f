//! JSON uploads: a list of files with their paths and contents, plain text or base64. Every
//! file is checked and decoded before the destination folder is created.

use std::borrow::Cow;
use std::path::Path;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::error::UploadError;
use super::limits::UploadLimits;
use super::paths::{file_path, shown};
use super::plan::PlanBuilder;
use super::staging::Staging;
use super::UploadSummary;

/// One file of a JSON upload (the HTTP layer converts its request type into this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    /// The project-relative path, `/` or `\` separated (`app/main.py`).
    pub path: String,
    /// The content, as text or as base64 according to `encoding`.
    pub content: String,
    /// How `content` is encoded.
    pub encoding: Encoding,
}

/// How the content of an [`UploadFile`] is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// The content is the file's text, written as UTF-8.
    #[default]
    Utf8,
    /// The content is the file's bytes in standard base64; padding is optional and whitespace
    /// (line breaks from MIME-style wrapping) is ignored.
    Base64,
}

/// Standard alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// See [`write_files`](super::write_files).
pub(crate) fn write_files(
    files: &[UploadFile],
    dest: &Path,
    limits: &UploadLimits,
) -> Result<UploadSummary, UploadError> {
    if files.len() > limits.max_files {
        return Err(UploadError::TooManyFiles {
            limit: limits.max_files,
            what: "files",
        });
    }
    let mut builder = PlanBuilder::new(limits);
    let mut contents = Vec::with_capacity(files.len());
    for (index, file) in files.iter().enumerate() {
        let path = file_path(&file.path)?;
        let content = decode(file)?;
        builder.add_file(index, &file.path, path, content.len() as u64, false)?;
        contents.push(content);
    }
    let plan = builder.finish(false)?;
    let mut staging = Staging::create(dest, limits)?;
    // The plan keeps every JSON file, in order: nothing is skipped or reordered.
    for (file, content) in plan.files.iter().zip(&contents) {
        let name = file.path.as_str();
        let unreadable = |source| UploadError::Io {
            path: name.to_owned(),
            source,
        };
        staging.write_file(file, &mut content.as_ref(), &unreadable)?;
    }
    Ok(staging.commit())
}

/// The bytes of `file`.
fn decode(file: &UploadFile) -> Result<Cow<'_, [u8]>, UploadError> {
    match file.encoding {
        Encoding::Utf8 => Ok(Cow::Borrowed(file.content.as_bytes())),
        Encoding::Base64 => {
            let text = &file.content;
            let decoded = if text.bytes().any(|byte| byte.is_ascii_whitespace()) {
                let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                BASE64.decode(compact)
            } else {
                BASE64.decode(text)
            };
            decoded
                .map(Cow::Owned)
                .map_err(|source| UploadError::InvalidBase64 {
                    path: shown(&file.path),
                    source,
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::upload::test_support::{any_limits, checked_upload, hostile_name};

    fn text(path: &str, content: &str) -> UploadFile {
        UploadFile {
            path: path.into(),
            content: content.into(),
            encoding: Encoding::Utf8,
        }
    }

    fn base64(path: &str, content: &str) -> UploadFile {
        UploadFile {
            path: path.into(),
            content: content.into(),
            encoding: Encoding::Base64,
        }
    }

    /// Writes `files` into a fresh `dest`; on refusal checks that `dest` does not exist and
    /// returns the error code.
    fn upload(files: &[UploadFile], limits: &UploadLimits) -> Result<UploadSummary, &'static str> {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        let result = write_files(files, &dest, limits);
        if result.is_err() {
            assert!(!dest.exists(), "a refused upload left {dest:?} behind");
        }
        result.map_err(|error| error.code())
    }

    /// A normal upload with nested, empty, base64 and backslash paths lands as written.
    #[test]
    fn good_upload_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("gen");
        let files = [
            text("app/main.py", "print('hi')\n"),
            text("./app/__init__.py", ""),
            base64("static/logo.bin", "AAEC/w=="),
            base64("static/wrapped.bin", "AAEC\n/w"),
            text("app\\routes\\users.py", "users = []\n"),
        ];
        let summary = write_files(&files, &dest, &UploadLimits::default()).unwrap();
        assert_eq!(
            summary,
            UploadSummary {
                file_count: 5,
                total_bytes: 12 + 4 + 4 + 11
            }
        );
        assert_eq!(
            fs::read_to_string(dest.join("app/main.py")).unwrap(),
            "print('hi')\n"
        );
        assert_eq!(fs::read(dest.join("app/__init__.py")).unwrap(), b"");
        assert_eq!(
            fs::read(dest.join("static/logo.bin")).unwrap(),
            [0, 1, 2, 255]
        );
        assert_eq!(
            fs::read(dest.join("static/wrapped.bin")).unwrap(),
            [0, 1, 2, 255]
        );
        assert!(dest.join("app/routes/users.py").is_file());
        let mode = fs::metadata(dest.join("app/main.py"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o644);
    }

    /// `..` in a JSON path is refused and nothing is written, even after good files.
    #[test]
    fn traversal_is_refused() {
        let files = [text("ok.py", "x"), text("../../etc/cron.d/evil", "x")];
        assert_eq!(
            upload(&files, &UploadLimits::default()),
            Err("path_traversal")
        );
        let files = [text("app/..\\..\\evil", "x")];
        assert_eq!(
            upload(&files, &UploadLimits::default()),
            Err("path_traversal")
        );
    }

    /// Absolute paths in every spelling are refused.
    #[test]
    fn absolute_paths_are_refused() {
        for path in [
            "/etc/passwd",
            "C:\\Windows\\evil.dll",
            "\\\\server\\share\\x",
        ] {
            assert_eq!(
                upload(&[text(path, "x")], &UploadLimits::default()),
                Err("absolute_path")
            );
        }
    }

    /// Empty paths and NUL bytes are invalid.
    #[test]
    fn invalid_paths_are_refused() {
        for path in ["", "a\0b", "app/"] {
            assert_eq!(
                upload(&[text(path, "x")], &UploadLimits::default()),
                Err("invalid_path")
            );
        }
    }

    /// Content that is not base64 is refused.
    #[test]
    fn invalid_base64_is_refused() {
        let files = [text("a.py", "x"), base64("b.bin", "not base64!")];
        assert_eq!(
            upload(&files, &UploadLimits::default()),
            Err("invalid_base64")
        );
    }

    /// The same path twice, also when spelled differently, is refused.
    #[test]
    fn duplicates_are_refused() {
        let files = [text("app/main.py", "a"), text("./app\\main.py", "b")];
        assert_eq!(
            upload(&files, &UploadLimits::default()),
            Err("duplicate_path")
        );
    }

    /// A file whose path another entry uses as a folder is refused.
    #[test]
    fn file_versus_folder_is_refused() {
        let files = [text("app", "a"), text("app/main.py", "b")];
        assert_eq!(
            upload(&files, &UploadLimits::default()),
            Err("path_conflict")
        );
    }

    /// More files than allowed is refused before anything is decoded.
    #[test]
    fn too_many_files_is_refused() {
        let limits = UploadLimits {
            max_files: 2,
            ..UploadLimits::default()
        };
        let files = [text("a", ""), text("b", ""), base64("c", "!!!")];
        assert_eq!(upload(&files, &limits), Err("too_many_files"));
    }

    /// One file over the per-file limit is refused.
    #[test]
    fn file_too_large_is_refused() {
        let limits = UploadLimits {
            max_file_bytes: 4,
            ..UploadLimits::default()
        };
        assert_eq!(
            upload(&[base64("big.bin", "AAAAAAAA")], &limits),
            Err("file_too_large")
        );
        assert!(upload(&[text("ok.txt", "four")], &limits).is_ok());
    }

    /// Files within the per-file limit that together pass the total are refused.
    #[test]
    fn total_too_large_is_refused() {
        let limits = UploadLimits {
            max_files: 10,
            max_file_bytes: 4,
            max_total_bytes: 6,
        };
        let files = [text("a", "1234"), text("b", "1234")];
        assert_eq!(upload(&files, &limits), Err("upload_too_large"));
    }

    /// No files at all is an empty upload.
    #[test]
    fn empty_upload_is_refused() {
        assert_eq!(upload(&[], &UploadLimits::default()), Err("empty_upload"));
    }

    /// Contents as a JSON upload sends them: text, valid base64, and base64 that is not.
    fn content() -> impl Strategy<Value = (String, Encoding)> {
        prop_oneof![
            ".{0,80}".prop_map(|text| (text, Encoding::Utf8)),
            vec(any::<u8>(), 0..150).prop_map(|bytes| (BASE64.encode(bytes), Encoding::Base64)),
            "[A-Za-z0-9+/=\\s!-]{0,40}".prop_map(|text| (text, Encoding::Base64)),
        ]
    }

    proptest! {
        /// Any list of files (escaping, malformed, junk, duplicate or over-long paths; text,
        /// base64 and broken base64) is refused with a typed error or written inside the folder
        /// within the limits; nothing is written beside it.
        #[test]
        fn generated_uploads_stay_inside(
            files in vec((hostile_name(), content()), 0..6),
            limits in any_limits(),
        ) {
            let _ = checked_upload(&limits, |dest, resolve| {
                let files: Vec<UploadFile> = files
                    .iter()
                    .map(|(path, (content, encoding))| UploadFile {
                        path: resolve(path),
                        content: content.clone(),
                        encoding: *encoding,
                    })
                    .collect();
                write_files(&files, dest, &limits)
            });
        }
    }
}
