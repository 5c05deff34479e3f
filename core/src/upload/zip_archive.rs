//! `.zip` uploads. The central directory is checked entry by entry (type, path, declared size,
//! counts, encryption, compression method) before anything is written or decompressed; the
//! contents are then counted as they are inflated, so a lying size field cannot get past the
//! limits either.

use std::io::{self, Cursor};
use std::path::Path;

use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::error::UploadError;
use super::limits::UploadLimits;
use super::paths::{dir_path, file_path, shown};
use super::plan::{Plan, PlanBuilder};
use super::staging::Staging;
use super::UploadSummary;

/// File type bits of a Unix mode.
const S_IFMT: u32 = 0o170_000;
/// A regular file.
const S_IFREG: u32 = 0o100_000;
/// A directory.
const S_IFDIR: u32 = 0o040_000;
/// A symbolic link.
const S_IFLNK: u32 = 0o120_000;

/// See [`extract_archive`](super::extract_archive).
pub(crate) fn extract(
    archive: &[u8],
    dest: &Path,
    limits: &UploadLimits,
) -> Result<UploadSummary, UploadError> {
    let mut zip = ZipArchive::new(Cursor::new(archive)).map_err(|error| failure(None, error))?;
    if zip.has_duplicate_names() {
        return Err(UploadError::DuplicateZipEntry);
    }
    let plan = scan(&zip, limits)?;
    let mut staging = Staging::create(dest, limits)?;
    for dir in &plan.dirs {
        staging.create_dir(dir)?;
    }
    for file in &plan.files {
        let name = file.path.as_str();
        let mut entry = zip
            .by_index(file.source)
            .map_err(|error| failure(Some(name), error))?;
        let damaged = |error: io::Error| UploadError::InvalidArchive {
            detail: format!("`{name}`: {error}"),
        };
        staging.write_file(file, &mut entry, &damaged)?;
    }
    Ok(staging.commit())
}

/// Checks every central directory entry; reads no content.
fn scan(zip: &ZipArchive<Cursor<&[u8]>>, limits: &UploadLimits) -> Result<Plan, UploadError> {
    let mut builder = PlanBuilder::new(limits);
    for index in 0..zip.len() {
        let entry = zip
            .by_index_data(index)
            .map_err(|error| failure(None, error))?;
        let raw = entry.name().map_err(|error| failure(None, error))?;
        let file_type = entry.unix_mode().map_or(0, |mode| mode & S_IFMT);
        match file_type {
            0 | S_IFREG | S_IFDIR => {}
            S_IFLNK => return Err(UploadError::LinkNotAllowed { path: shown(&raw) }),
            _ => return Err(UploadError::SpecialFileNotAllowed { path: shown(&raw) }),
        }
        if entry.is_dir() || file_type == S_IFDIR {
            match dir_path(&raw)? {
                Some(path) if !path.is_junk() => builder.add_dir(&raw, path)?,
                _ => {}
            }
            continue;
        }
        let path = file_path(&raw)?;
        if path.is_junk() {
            continue;
        }
        if entry.encrypted() {
            return Err(UploadError::UnsupportedEntry {
                path: shown(&raw),
                reason: "encrypted entries are not supported; zip the project without a password"
                    .into(),
            });
        }
        match entry.compression() {
            CompressionMethod::Stored | CompressionMethod::Deflated => {}
            other => {
                return Err(UploadError::UnsupportedEntry {
                    path: shown(&raw),
                    reason: format!(
                        "compression method {other:?} is not supported; use Deflate or Store"
                    ),
                });
            }
        }
        let executable = entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        builder.add_file(index, &raw, path, entry.size(), executable)?;
    }
    builder.finish(true)
}

/// What a zip reader error means for the upload, for the entry `name` when there is one.
fn failure(name: Option<&str>, error: ZipError) -> UploadError {
    match (error, name) {
        (ZipError::UnsupportedArchive(reason), Some(name)) => UploadError::UnsupportedEntry {
            path: name.to_owned(),
            reason: reason.to_owned(),
        },
        (ZipError::UnsupportedArchive(reason), None) => UploadError::UnsupportedArchive {
            detail: reason.to_owned(),
        },
        (other, Some(name)) => UploadError::InvalidArchive {
            detail: format!("`{name}`: {other}"),
        },
        (other, None) => UploadError::InvalidArchive {
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use zip::write::SimpleFileOptions;
    use zip::ZipWriter;

    use super::*;
    use crate::upload::test_support::{
        any_limits, checked_extract, checked_upload, files_in, hostile_name, try_extract,
    };
    use crate::upload::ArchiveKind;

    fn deflated() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
    }

    /// A zip of `(name, content)` files, deflated, names written exactly as given.
    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in files {
            writer.start_file(*name, deflated()).unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn extract_code(bytes: &[u8], limits: &UploadLimits) -> Result<Vec<String>, &'static str> {
        try_extract(bytes, ArchiveKind::Zip, limits).map(|(_tmp, dest, _)| files_in(&dest))
    }

    fn refused(files: &[(&str, &[u8])]) -> &'static str {
        extract_code(&zip_of(files), &UploadLimits::default()).unwrap_err()
    }

    /// Offsets of every `signature` in `bytes`.
    fn find_all(bytes: &[u8], signature: &[u8; 4]) -> Vec<usize> {
        bytes
            .windows(4)
            .enumerate()
            .filter(|(_, window)| window == signature)
            .map(|(at, _)| at)
            .collect()
    }

    /// Rewrites the uncompressed size of every entry in both local and central headers.
    fn declare_size(bytes: &mut [u8], size: u32) {
        for at in find_all(bytes, b"PK\x03\x04") {
            bytes[at + 22..at + 26].copy_from_slice(&size.to_le_bytes());
        }
        for at in find_all(bytes, b"PK\x01\x02") {
            bytes[at + 24..at + 28].copy_from_slice(&size.to_le_bytes());
        }
    }

    /// A GitHub-style zip (folder entries, one wrapping folder) lands unwrapped, exec bit kept.
    #[test]
    fn good_zip_with_top_folder_is_stripped() {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer.add_directory("proj-main/", deflated()).unwrap();
        writer.add_directory("proj-main/app/", deflated()).unwrap();
        writer
            .add_directory("proj-main/empty/", deflated())
            .unwrap();
        writer
            .start_file("proj-main/app/main.py", deflated())
            .unwrap();
        writer.write_all(b"app = 1\n").unwrap();
        writer
            .start_file("proj-main/run.sh", deflated().unix_permissions(0o755))
            .unwrap();
        writer.write_all(b"#!/bin/sh\n").unwrap();
        writer
            .start_file("proj-main/nested.zip", SimpleFileOptions::default())
            .unwrap();
        writer.write_all(&zip_of(&[("inner.txt", b"x")])).unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        let (_tmp, dest, summary) =
            try_extract(&bytes, ArchiveKind::Zip, &UploadLimits::default()).unwrap();
        assert_eq!(summary.file_count, 3);
        assert_eq!(files_in(&dest), ["app/main.py", "nested.zip", "run.sh"]);
        assert_eq!(fs::read(dest.join("app/main.py")).unwrap(), b"app = 1\n");
        assert!(dest.join("empty").is_dir());
        let mode =
            |path: &str| fs::metadata(dest.join(path)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("run.sh"), 0o755);
        assert_eq!(mode("app/main.py"), 0o644);
    }

    /// Backslash names from Windows zips become folders.
    #[test]
    fn backslash_names_are_folders() {
        let files: [(&str, &[u8]); 2] = [("app\\main.py", b"x"), ("app\\db\\models.py", b"y")];
        let bytes = zip_of(&files);
        let (_tmp, dest, _) =
            try_extract(&bytes, ArchiveKind::Zip, &UploadLimits::default()).unwrap();
        assert_eq!(files_in(&dest), ["db/models.py", "main.py"]);
    }

    /// `__MACOSX/` folders and `.DS_Store` files are skipped, not refused.
    #[test]
    fn mac_junk_is_skipped() {
        let files: [(&str, &[u8]); 4] = [
            ("main.py", b"x"),
            ("requirements.txt", b"fastapi\n"),
            ("__MACOSX/._main.py", b"junk"),
            (".DS_Store", b"junk"),
        ];
        let listed = extract_code(&zip_of(&files), &UploadLimits::default());
        assert_eq!(
            listed,
            Ok(vec!["main.py".into(), "requirements.txt".into()])
        );
    }

    /// `..` in a zip entry name is refused and nothing is written.
    #[test]
    fn traversal_is_refused() {
        assert_eq!(
            refused(&[("ok.py", b"x"), ("../../evil.py", b"x")]),
            "path_traversal"
        );
        assert_eq!(refused(&[("app\\..\\..\\evil.py", b"x")]), "path_traversal");
    }

    /// Absolute entry names are refused.
    #[test]
    fn absolute_path_is_refused() {
        assert_eq!(refused(&[("/etc/passwd", b"x")]), "absolute_path");
        assert_eq!(refused(&[("C:\\evil.dll", b"x")]), "absolute_path");
    }

    /// Symlink entries (S_IFLNK in the external attributes) are refused.
    #[test]
    fn symlink_is_refused() {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer.start_file("main.py", deflated()).unwrap();
        writer
            .add_symlink("settings.py", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        assert_eq!(
            extract_code(&bytes, &UploadLimits::default()),
            Err("link_not_allowed")
        );
    }

    /// Encrypted entries are refused as unsupported before anything is written.
    #[test]
    fn encrypted_entry_is_refused() {
        let mut bytes = zip_of(&[("secret.py", b"x")]);
        for at in find_all(&bytes, b"PK\x03\x04") {
            bytes[at + 6] |= 1;
        }
        for at in find_all(&bytes, b"PK\x01\x02") {
            bytes[at + 8] |= 1;
        }
        assert_eq!(
            extract_code(&bytes, &UploadLimits::default()),
            Err("unsupported_archive")
        );
    }

    /// Names that differ only in separators collide; a file used as a folder is refused.
    #[test]
    fn duplicates_and_conflicts_are_refused() {
        assert_eq!(
            refused(&[("app/a.py", b"x"), ("app\\a.py", b"y")]),
            "duplicate_path"
        );
        assert_eq!(
            refused(&[("app", b"x"), ("app/a.py", b"y")]),
            "path_conflict"
        );
    }

    /// More files than allowed is refused from the central directory.
    #[test]
    fn too_many_files_is_refused() {
        let limits = UploadLimits {
            max_files: 2,
            ..UploadLimits::default()
        };
        let files: [(&str, &[u8]); 3] = [("a", b""), ("b", b""), ("c", b"")];
        assert_eq!(
            extract_code(&zip_of(&files), &limits),
            Err("too_many_files")
        );
    }

    /// One file over the per-file limit is refused.
    #[test]
    fn file_too_large_is_refused() {
        let limits = UploadLimits {
            max_file_bytes: 4,
            ..UploadLimits::default()
        };
        assert_eq!(
            extract_code(&zip_of(&[("big", b"12345")]), &limits),
            Err("file_too_large")
        );
    }

    /// Files within the per-file limit that together pass the total are refused.
    #[test]
    fn total_too_large_is_refused() {
        let limits = UploadLimits {
            max_files: 10,
            max_file_bytes: 4,
            max_total_bytes: 6,
        };
        let files: [(&str, &[u8]); 2] = [("a", b"1234"), ("b", b"1234")];
        assert_eq!(
            extract_code(&zip_of(&files), &limits),
            Err("upload_too_large")
        );
    }

    /// A bomb that declares its real (huge) size is refused from the central directory.
    #[test]
    fn zip_bomb_with_honest_size_is_refused_cheaply() {
        let mut bytes = zip_of(&[("bomb.bin", &[0; 1024])]);
        declare_size(&mut bytes, 3 << 30);
        assert_eq!(
            extract_code(&bytes, &UploadLimits::default()),
            Err("file_too_large")
        );
    }

    /// A bomb that declares 10 bytes but inflates to 4 MiB is stopped right after the declared
    /// size, and the partly written folder is removed.
    #[test]
    fn zip_bomb_with_lying_size_is_stopped() {
        let mut bytes = zip_of(&[("ok.py", b"x"), ("bomb.bin", &vec![0; 4 << 20])]);
        declare_size(&mut bytes, 10);
        assert_eq!(
            extract_code(&bytes, &UploadLimits::default()),
            Err("invalid_archive")
        );
    }

    /// Bytes that are not a zip are an invalid archive, not a panic.
    #[test]
    fn garbage_is_invalid() {
        for bytes in [
            &b"this is not an archive"[..],
            b"",
            b"PK\x03\x04garbage",
            b"PK\x05\x06",
        ] {
            assert_eq!(
                extract_code(bytes, &UploadLimits::default()),
                Err("invalid_archive"),
                "{bytes:?}"
            );
        }
    }

    /// A zip cut short (no central directory) is an invalid archive.
    #[test]
    fn truncated_archive_is_invalid() {
        let bytes = zip_of(&[("a.py", b"x"), ("b.bin", &vec![7; 100_000])]);
        let cut = &bytes[..bytes.len() - 30];
        assert_eq!(
            extract_code(cut, &UploadLimits::default()),
            Err("invalid_archive")
        );
    }

    /// A zip with only folders is an empty upload.
    #[test]
    fn folders_only_is_empty() {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer.add_directory("proj/", deflated()).unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        assert_eq!(
            extract_code(&bytes, &UploadLimits::default()),
            Err("empty_upload")
        );
    }

    /// What a generated zip entry is.
    #[derive(Debug, Clone, Copy)]
    enum Shape {
        File,
        Folder,
        Link,
    }

    /// One entry of a generated zip: any name, shape, external attributes (file type and
    /// permission bits) and content.
    #[derive(Debug, Clone)]
    struct Generated {
        name: String,
        shape: Shape,
        attributes: Option<u32>,
        deflate: bool,
        data: Vec<u8>,
    }

    fn generated_entry() -> impl Strategy<Value = Generated> {
        let shape = prop_oneof![
            8 => Just(Shape::File),
            2 => Just(Shape::Folder),
            1 => Just(Shape::Link),
        ];
        let file_type = prop::sample::select(vec![
            0, S_IFREG, S_IFDIR, S_IFLNK, 0o020_000, 0o060_000, 0o010_000, 0o140_000,
        ]);
        let attributes = prop_oneof![
            6 => Just(None),
            2 => (file_type, 0u32..0o10_000).prop_map(|(kind, mode)| Some((kind | mode) << 16)),
            1 => any::<u32>().prop_map(Some),
        ];
        (
            hostile_name(),
            shape,
            attributes,
            any::<bool>(),
            vec(any::<u8>(), 0..120),
        )
            .prop_map(|(name, shape, attributes, deflate, data)| Generated {
                name,
                shape,
                attributes,
                deflate,
                data,
            })
    }

    /// The zip of `entries`, names (and link targets, taken from the content) passed through
    /// `resolve`. Entries the writer refuses (a name given twice, say) are left out.
    fn generated_zip(entries: &[Generated], resolve: &dyn Fn(&str) -> String) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        for entry in entries {
            let name = resolve(&entry.name);
            let method = if entry.deflate {
                CompressionMethod::Deflated
            } else {
                CompressionMethod::Stored
            };
            let mut options = SimpleFileOptions::default().compression_method(method);
            if let Some(attributes) = entry.attributes {
                options = options.external_attributes(attributes);
            }
            let _ = match entry.shape {
                Shape::File => writer
                    .start_file(name, options)
                    .map_err(io::Error::other)
                    .and_then(|()| writer.write_all(&entry.data)),
                Shape::Folder => writer
                    .add_directory(name, options)
                    .map_err(io::Error::other),
                Shape::Link => {
                    let target = resolve(&String::from_utf8_lossy(&entry.data));
                    writer
                        .add_symlink(name, target, options)
                        .map_err(io::Error::other)
                }
            };
        }
        writer.finish().map(Cursor::into_inner).unwrap_or_default()
    }

    proptest! {
        /// Any entries (escaping names, links, devices by their mode bits, folders, junk) are
        /// refused with a typed error or land inside the folder within the limits; nothing is
        /// written beside it. Sizes in the headers may also lie, by any amount.
        #[test]
        fn generated_archives_stay_inside(
            entries in vec(generated_entry(), 0..6),
            declared in prop_oneof![3 => Just(None), 1 => any::<u32>().prop_map(Some)],
            limits in any_limits(),
        ) {
            let _ = checked_upload(&limits, |dest, resolve| {
                let mut bytes = generated_zip(&entries, resolve);
                if let Some(size) = declared {
                    declare_size(&mut bytes, size);
                }
                extract(&bytes, dest, &limits)
            });
        }

        /// Arbitrary bytes, raw or behind a zip signature, are refused, never a panic.
        #[test]
        fn arbitrary_bytes_are_refused(
            bytes in vec(any::<u8>(), 0..2048),
            signature in prop::sample::select(vec![&b""[..], b"PK\x03\x04", b"PK\x05\x06"]),
            limits in any_limits(),
        ) {
            let bytes = [signature, &bytes].concat();
            let _ = checked_extract(&bytes, ArchiveKind::Zip, &limits);
        }

        /// A well-formed zip with bytes overwritten anywhere, and maybe cut anywhere (from
        /// either end: the central directory is at the end), is refused or extracted within
        /// the limits; never a panic.
        #[test]
        fn cut_and_damaged_archives(
            files in btree_map("[a-c]{1,3}(/[a-c]{1,3}){0,2}", vec(any::<u8>(), 0..120), 1..6),
            cut in prop::option::of(any::<prop::sample::Index>()),
            from_start in any::<bool>(),
            damage in vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            limits in any_limits(),
        ) {
            let files: Vec<(&str, &[u8])> =
                files.iter().map(|(name, data)| (name.as_str(), &data[..])).collect();
            let mut bytes = zip_of(&files);
            for (at, byte) in &damage {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
            let bytes = match cut.map(|cut| cut.index(bytes.len() + 1)) {
                Some(cut) if from_start => &bytes[cut..],
                Some(cut) => &bytes[..cut],
                None => &bytes[..],
            };
            let _ = checked_extract(bytes, ArchiveKind::Zip, &limits);
        }
    }
}
