//! Helpers shared by the upload tests: extracting into a fresh folder, the checks every
//! generated upload must pass, and the generators the property tests share.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tempfile::TempDir;

use super::{extract_archive, ArchiveKind, UploadError, UploadLimits, UploadSummary};

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

/// The folder beside the destination that hostile names aim at (`../outside/x`).
pub(crate) const OUTSIDE: &str = "outside";

/// Stands for the absolute path of [`OUTSIDE`] in generated names; [`checked_upload`] gives
/// the writer a `resolve` that replaces it.
pub(crate) const OUTSIDE_ABSOLUTE: &str = "@OUTSIDE@";

/// What every upload must satisfy, whatever its input: `write` fills `dest` (in a fresh folder
/// that also holds an empty [`OUTSIDE`] folder) and must either
/// - refuse with a typed error that is not [`UploadError::Io`] (hostile input is never the
///   server's fault), leaving no `dest` behind, or
/// - succeed within `limits`, with only regular files and folders under `dest`, as many files
///   and bytes as its summary says;
///
/// and in both cases nothing may appear beside `dest`. `write` gets `dest` and a function that
/// replaces [`OUTSIDE_ABSOLUTE`] in a name. Returns the error code, or the files written.
pub(crate) fn checked_upload(
    limits: &UploadLimits,
    write: impl FnOnce(&Path, &dyn Fn(&str) -> String) -> Result<UploadSummary, UploadError>,
) -> Result<Vec<String>, &'static str> {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join(OUTSIDE);
    fs::create_dir(&outside).unwrap();
    let dest = tmp.path().join("dest");
    let absolute = outside.to_string_lossy().into_owned();
    let resolve = |name: &str| name.replace(OUTSIDE_ABSOLUTE, &absolute);
    let result = write(&dest, &resolve);
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "the upload wrote into {outside:?}"
    );
    for entry in fs::read_dir(tmp.path()).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            name == OUTSIDE || name == "dest",
            "the upload wrote {name:?}"
        );
    }
    match result {
        Err(error) => {
            assert!(
                !matches!(error, UploadError::Io { .. }),
                "hostile input is a refusal, not a server failure: {error}"
            );
            assert!(
                !dest.exists(),
                "a refused upload ({error}) left {dest:?} behind"
            );
            Err(error.code())
        }
        Ok(summary) => {
            let (count, total) = regular_tree(&dest, limits);
            assert_eq!((count, total), (summary.file_count, summary.total_bytes));
            assert!(count <= limits.max_files, "{count} files");
            assert!(total <= limits.max_total_bytes, "{total} bytes");
            Ok(files_in(&dest))
        }
    }
}

/// [`checked_upload`] of an archive.
pub(crate) fn checked_extract(
    bytes: &[u8],
    kind: ArchiveKind,
    limits: &UploadLimits,
) -> Result<Vec<String>, &'static str> {
    checked_upload(limits, |dest, _| extract_archive(bytes, kind, dest, limits))
}

/// Files and bytes under `root`, which must hold only folders and regular files, none larger
/// than the per-file limit.
fn regular_tree(root: &Path, limits: &UploadLimits) -> (usize, u64) {
    let (mut count, mut total) = (0, 0);
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                pending.push(path);
            } else {
                assert!(meta.is_file(), "{path:?} is not a regular file");
                assert!(meta.len() <= limits.max_file_bytes, "{path:?} is too large");
                count += 1;
                total += meta.len();
            }
        }
    }
    (count, total)
}

/// Limits for property tests: small ones that generated uploads often break, and the defaults.
pub(crate) fn any_limits() -> impl Strategy<Value = UploadLimits> {
    prop_oneof![
        Just(UploadLimits {
            max_files: 4,
            max_file_bytes: 100,
            max_total_bytes: 250,
        }),
        Just(UploadLimits::default()),
    ]
}

/// Paths as a hostile upload spells them: plain nested ones (so some uploads succeed), every
/// escape aimed at [`OUTSIDE`] (relative, absolute, with backslashes), malformed and junk
/// paths, mixes of dots and separators, over-long ones and arbitrary text.
pub(crate) fn hostile_name() -> impl Strategy<Value = String> {
    let escapes = prop::sample::select(vec![
        "../outside/pwn",
        "a/../../outside/pwn",
        "..\\outside\\pwn",
        "./../outside/pwn",
        "@OUTSIDE@/pwn",
        "@OUTSIDE@",
        "/etc/passwd",
        "C:\\x",
        "c:x",
        "\\\\server\\share\\x",
        "..",
        ".",
        "./",
        "",
        "/",
        "a//b",
        "a/",
        "a/./b",
        "__MACOSX/._a",
        "d/.DS_Store",
        "a\0b",
        "a\nb",
    ]);
    prop_oneof![
        10 => "[a-c]{1,3}(/[a-c]{1,3}){0,2}(\\.py)?",
        2 => escapes.prop_map(str::to_owned),
        1 => "[a./\\\\]{0,12}",
        1 => ".{0,40}",
        1 => (1usize..4, 60usize..90)
            .prop_map(|(len, depth)| vec!["d".repeat(len); depth].join("/")),
        1 => (250usize..300).prop_map(|len| "n".repeat(len)),
    ]
}
