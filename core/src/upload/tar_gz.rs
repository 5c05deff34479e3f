//! `.tar.gz` uploads. The archive is read twice: a first pass checks every entry (type, path,
//! declared size, counts) and builds the plan without writing anything; a second pass writes
//! the planned files. Both passes count the decompressed stream as it flows and stop it past
//! [`UploadLimits::max_stream_bytes`], so a gzip bomb costs at most that much work, whichever
//! entries it hides in. The tar crate's own `unpack` is never used.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use tar::{Archive, EntryType};

use super::error::UploadError;
use super::limits::UploadLimits;
use super::paths::{dir_path, file_path, shown, utf8_name};
use super::plan::{Plan, PlanBuilder};
use super::staging::Staging;
use super::UploadSummary;

/// See [`extract_archive`](super::extract_archive).
pub(crate) fn extract(
    archive: &[u8],
    dest: &Path,
    limits: &UploadLimits,
) -> Result<UploadSummary, UploadError> {
    let plan = scan(archive, limits)?;
    let mut staging = Staging::create(dest, limits)?;
    for dir in &plan.dirs {
        staging.create_dir(dir)?;
    }
    let (mut tar, tripped) = open(archive, limits);
    let failed = |error| failure(&tripped, limits, error);
    let mut files = plan.files.iter().peekable();
    for (ordinal, entry) in tar.entries().map_err(failed)?.enumerate() {
        if files.peek().is_none() {
            break;
        }
        let mut entry = entry.map_err(failed)?;
        if let Some(file) = files.next_if(|file| file.source == ordinal) {
            let name = file.path.as_str();
            let unreadable = |error: io::Error| match failure(&tripped, limits, error) {
                UploadError::InvalidArchive { detail } => UploadError::InvalidArchive {
                    detail: format!("`{name}`: {detail}"),
                },
                other => other,
            };
            staging.write_file(file, &mut entry, &unreadable)?;
        }
    }
    if files.peek().is_some() {
        return Err(UploadError::InvalidArchive {
            detail: "the archive read differently the second time".into(),
        });
    }
    Ok(staging.commit())
}

/// The first pass: every entry checked, nothing written.
fn scan(archive: &[u8], limits: &UploadLimits) -> Result<Plan, UploadError> {
    let (mut tar, tripped) = open(archive, limits);
    let failed = |error| failure(&tripped, limits, error);
    let mut builder = PlanBuilder::new(limits);
    for (ordinal, entry) in tar.entries().map_err(failed)?.enumerate() {
        let entry = entry.map_err(failed)?;
        let header = entry.header();
        let name_bytes = entry.path_bytes();
        let raw = utf8_name(&name_bytes)?;
        match header.entry_type() {
            EntryType::Regular | EntryType::Continuous if !raw.ends_with('/') => {
                let path = file_path(raw)?;
                if path.is_junk() {
                    continue;
                }
                let mode = header.mode().map_err(|error| UploadError::InvalidArchive {
                    detail: format!("`{}`: {error}", shown(raw)),
                })?;
                builder.add_file(ordinal, raw, path, entry.size(), mode & 0o111 != 0)?;
            }
            EntryType::Regular | EntryType::Continuous | EntryType::Directory => {
                match dir_path(raw)? {
                    Some(path) if !path.is_junk() => builder.add_dir(raw, path)?,
                    _ => {}
                }
            }
            EntryType::Symlink | EntryType::Link => {
                return Err(UploadError::LinkNotAllowed { path: shown(raw) });
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(UploadError::SpecialFileNotAllowed { path: shown(raw) });
            }
            // Archive-wide metadata, such as the commit id `git archive` records.
            EntryType::XGlobalHeader => {}
            EntryType::GNUSparse => {
                return Err(UploadError::UnsupportedEntry {
                    path: shown(raw),
                    reason: "sparse files are not supported".into(),
                });
            }
            other => {
                return Err(UploadError::UnsupportedEntry {
                    path: shown(raw),
                    reason: format!(
                        "tar entries of type `{}` are not supported",
                        other.as_byte().escape_ascii()
                    ),
                });
            }
        }
    }
    builder.finish(true)
}

/// A tar reader over the capped, decompressed stream of an uploaded `.tar.gz`.
type TarReader<'a> = Archive<StreamCap<MultiGzDecoder<&'a [u8]>>>;

/// The archive reader over the capped decompressed stream, and the flag the cap raises.
fn open<'a>(archive: &'a [u8], limits: &UploadLimits) -> (TarReader<'a>, Rc<Cell<bool>>) {
    let tripped = Rc::new(Cell::new(false));
    let stream = StreamCap {
        inner: MultiGzDecoder::new(archive),
        remaining: limits.max_stream_bytes(),
        tripped: Rc::clone(&tripped),
    };
    (Archive::new(stream), tripped)
}

/// What a read failure means: the stream cap was hit, or the archive is damaged.
fn failure(tripped: &Cell<bool>, limits: &UploadLimits, error: io::Error) -> UploadError {
    if tripped.get() {
        UploadError::ArchiveTooLarge {
            limit: limits.max_stream_bytes(),
        }
    } else {
        UploadError::InvalidArchive {
            detail: error.to_string(),
        }
    }
}

/// A reader that yields at most `remaining` bytes of `inner`, then fails (raising `tripped`)
/// if `inner` has more: at most one byte past the cap is ever decompressed.
struct StreamCap<R> {
    inner: R,
    remaining: u64,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for StreamCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut probe = [0; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.tripped.set(true);
            return Err(io::Error::other("the archive expands past the size limit"));
        }
        let room = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let count = self.inner.read(&mut buf[..room])?;
        self.remaining -= count as u64;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use flate2::write::GzEncoder;
    use flate2::Compression;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use tar::{Builder, Header};

    use super::*;
    use crate::upload::test_support::{
        any_limits, checked_extract, checked_upload, files_in, hostile_name, try_extract,
    };
    use crate::upload::ArchiveKind;

    /// A tar entry written byte by byte, bypassing the builder's path checks.
    struct Raw<'a> {
        name: &'a [u8],
        kind: EntryType,
        mode: u32,
        size: u64,
        link: &'a [u8],
    }

    impl Raw<'_> {
        fn header(&self) -> Header {
            let mut header = Header::new_gnu();
            let old = header.as_old_mut();
            old.name[..self.name.len()].copy_from_slice(self.name);
            old.linkname[..self.link.len()].copy_from_slice(self.link);
            header.set_entry_type(self.kind);
            header.set_mode(self.mode);
            header.set_size(self.size);
            header.set_cksum();
            header
        }
    }

    fn raw(name: &str, kind: EntryType) -> Raw<'_> {
        Raw {
            name: name.as_bytes(),
            kind,
            mode: 0o644,
            size: 0,
            link: b"",
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// A `.tar.gz` of raw entries, each followed by its data (`size` bytes of `x`).
    fn tar_gz(entries: &[Raw<'_>]) -> Vec<u8> {
        let mut builder = Builder::new(Vec::new());
        for entry in entries {
            let data = vec![b'x'; usize::try_from(entry.size).unwrap()];
            builder.append(&entry.header(), &data[..]).unwrap();
        }
        gzip(&builder.into_inner().unwrap())
    }

    /// A well-formed `.tar.gz` of `(path, content)` files made with the builder.
    fn good_tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = Builder::new(Vec::new());
        for (path, content) in files {
            let mut header = Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, *content).unwrap();
        }
        gzip(&builder.into_inner().unwrap())
    }

    fn extract_code(bytes: &[u8], limits: &UploadLimits) -> Result<Vec<String>, &'static str> {
        try_extract(bytes, ArchiveKind::TarGz, limits).map(|(_tmp, dest, _)| files_in(&dest))
    }

    fn refused(entries: &[Raw<'_>]) -> &'static str {
        extract_code(&tar_gz(entries), &UploadLimits::default()).unwrap_err()
    }

    /// A GitHub-style tarball (pax global header, one wrapping folder) lands unwrapped, with
    /// empty folders, exec bits and long names kept.
    #[test]
    fn good_tar_gz_with_top_folder_is_stripped() {
        let long = format!("proj-main/{}/deep.py", "n".repeat(150));
        let mut builder = Builder::new(Vec::new());
        let comment = b"52 comment=0123456789abcdef0123456789abcdef01234567\n";
        let mut global = raw("pax_global_header", EntryType::XGlobalHeader);
        global.size = comment.len() as u64;
        builder.append(&global.header(), &comment[..]).unwrap();
        let mut dir = Header::new_gnu();
        dir.set_entry_type(EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        builder
            .append_data(&mut dir, "proj-main/", io::empty())
            .unwrap();
        builder
            .append_data(&mut dir.clone(), "proj-main/empty/", io::empty())
            .unwrap();
        for (path, mode, content) in [
            ("proj-main/app/main.py", 0o644, &b"app = 1\n"[..]),
            ("proj-main/run.sh", 0o775, &b"#!/bin/sh\n"[..]),
            (long.as_str(), 0o644, &b""[..]),
        ] {
            let mut header = Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(mode);
            builder.append_data(&mut header, path, content).unwrap();
        }
        let bytes = gzip(&builder.into_inner().unwrap());
        let (_tmp, dest, summary) =
            try_extract(&bytes, ArchiveKind::TarGz, &UploadLimits::default()).unwrap();
        assert_eq!(
            summary,
            UploadSummary {
                file_count: 3,
                total_bytes: 18
            }
        );
        let deep = format!("{}/deep.py", "n".repeat(150));
        assert_eq!(
            files_in(&dest),
            vec!["app/main.py".to_owned(), deep, "run.sh".into()]
        );
        assert_eq!(fs::read(dest.join("app/main.py")).unwrap(), b"app = 1\n");
        assert!(dest.join("empty").is_dir());
        let mode =
            |path: &str| fs::metadata(dest.join(path)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("run.sh"), 0o755);
        assert_eq!(mode("app/main.py"), 0o644);
    }

    /// `tar -C dir .` archives (a `./` entry, `./`-prefixed names) land as they are.
    #[test]
    fn dot_slash_archive_is_accepted() {
        let mut dot = raw("./", EntryType::Directory);
        dot.mode = 0o755;
        let mut main = raw("./main.py", EntryType::Regular);
        main.size = 3;
        let mut lib = raw("./lib/util.py", EntryType::Regular);
        lib.size = 1;
        let listed = extract_code(&tar_gz(&[dot, main, lib]), &UploadLimits::default());
        assert_eq!(listed, Ok(vec!["lib/util.py".into(), "main.py".into()]));
    }

    /// `__MACOSX/` folders and `.DS_Store` files are skipped, not refused.
    #[test]
    fn mac_junk_is_skipped() {
        let files: [(&str, &[u8]); 4] = [
            ("proj/main.py", b"x"),
            ("proj/.DS_Store", b"junk"),
            ("__MACOSX/proj/._main.py", b"junk"),
            ("__MACOSX/._proj", b"junk"),
        ];
        let listed = extract_code(&good_tar_gz(&files), &UploadLimits::default());
        assert_eq!(listed, Ok(vec!["main.py".into()]));
    }

    /// `..` in a tar entry name is refused and nothing is written.
    #[test]
    fn traversal_is_refused() {
        let mut evil = raw("../../etc/cron.d/evil", EntryType::Regular);
        evil.size = 4;
        assert_eq!(
            refused(&[raw("ok.py", EntryType::Regular), evil]),
            "path_traversal"
        );
        assert_eq!(
            refused(&[raw("a\\..\\..\\evil", EntryType::Regular)]),
            "path_traversal"
        );
    }

    /// An absolute entry name is refused.
    #[test]
    fn absolute_path_is_refused() {
        assert_eq!(
            refused(&[raw("/etc/passwd", EntryType::Regular)]),
            "absolute_path"
        );
    }

    /// Symbolic links are refused, whatever they point at.
    #[test]
    fn symlink_is_refused() {
        let mut link = raw("config.py", EntryType::Symlink);
        link.link = b"/etc/passwd";
        assert_eq!(
            refused(&[raw("main.py", EntryType::Regular), link]),
            "link_not_allowed"
        );
    }

    /// Hard links are refused, even to a file of the archive.
    #[test]
    fn hardlink_is_refused() {
        let mut link = raw("copy.py", EntryType::Link);
        link.link = b"main.py";
        assert_eq!(
            refused(&[raw("main.py", EntryType::Regular), link]),
            "link_not_allowed"
        );
    }

    /// Character and block devices and FIFOs are refused.
    #[test]
    fn devices_and_fifos_are_refused() {
        for kind in [EntryType::Char, EntryType::Block, EntryType::Fifo] {
            assert_eq!(
                refused(&[raw("dev", kind)]),
                "special_file_not_allowed",
                "{kind:?}"
            );
        }
    }

    /// Sparse and unknown entry types are refused as unsupported.
    #[test]
    fn exotic_entry_types_are_refused() {
        assert_eq!(
            refused(&[raw("label", EntryType::new(b'V'))]),
            "unsupported_archive"
        );
    }

    /// The same file twice and a file used as a folder are refused.
    #[test]
    fn duplicates_and_conflicts_are_refused() {
        let same = [
            raw("a.py", EntryType::Regular),
            raw("./a.py", EntryType::Regular),
        ];
        assert_eq!(refused(&same), "duplicate_path");
        let conflict = [
            raw("a", EntryType::Regular),
            raw("a/b.py", EntryType::Regular),
        ];
        assert_eq!(refused(&conflict), "path_conflict");
    }

    /// More files than allowed is refused.
    #[test]
    fn too_many_files_is_refused() {
        let limits = UploadLimits {
            max_files: 2,
            ..UploadLimits::default()
        };
        let files: [(&str, &[u8]); 3] = [("a", b""), ("b", b""), ("c", b"")];
        assert_eq!(
            extract_code(&good_tar_gz(&files), &limits),
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
        let files: [(&str, &[u8]); 1] = [("big.bin", b"12345")];
        assert_eq!(
            extract_code(&good_tar_gz(&files), &limits),
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
            extract_code(&good_tar_gz(&files), &limits),
            Err("upload_too_large")
        );
    }

    /// 200 MB of zeros declared honestly in the header is refused at the header: the data
    /// after it is garbage, so reading any of it would have given `invalid_archive` instead.
    #[test]
    fn gzip_bomb_is_refused_at_its_header() {
        let mut bomb = raw("bomb.bin", EntryType::Regular);
        bomb.size = 200 << 20;
        let mut bytes = gzip(bomb.header().as_bytes());
        bytes.extend_from_slice(b"garbage, not gzip");
        let error = extract_code(&bytes, &UploadLimits::default());
        assert_eq!(error, Err("file_too_large"));
    }

    /// A bomb hidden where no limit on files applies (a skipped `__MACOSX` entry, a pax header
    /// the tar reader loads into memory) is stopped by the cap on the decompressed stream:
    /// 200 MB declared, 8 MiB of real zeros, then garbage; stopping anywhere but early would
    /// reach the garbage and report `invalid_archive`.
    #[test]
    fn gzip_bomb_in_skipped_entries_is_stopped_early() {
        let limits = UploadLimits {
            max_files: 10,
            max_file_bytes: 1 << 20,
            max_total_bytes: 1 << 20,
        };
        let zeros = gzip(&vec![0; 1 << 20]);
        for carrier in [
            raw("__MACOSX/._bomb", EntryType::Regular),
            raw("pax", EntryType::XHeader),
        ] {
            let mut carrier = carrier;
            carrier.size = 200 << 20;
            let mut bytes = gzip(carrier.header().as_bytes());
            for _ in 0..8 {
                bytes.extend_from_slice(&zeros);
            }
            bytes.extend_from_slice(b"garbage, not gzip");
            assert_eq!(extract_code(&bytes, &limits), Err("upload_too_large"));
        }
    }

    /// The stream cap lets exactly `remaining` bytes through and fails on the next one.
    #[test]
    fn stream_cap_stops_one_byte_past_the_limit() {
        let tripped = Rc::new(Cell::new(false));
        let mut capped = StreamCap {
            inner: io::repeat(0),
            remaining: 10,
            tripped: Rc::clone(&tripped),
        };
        let mut out = Vec::new();
        assert!(capped.read_to_end(&mut out).is_err());
        assert_eq!(out.len(), 10);
        assert!(tripped.get());
        let mut exact = StreamCap {
            inner: &[0; 10][..],
            remaining: 10,
            tripped: Rc::default(),
        };
        assert_eq!(exact.read_to_end(&mut Vec::new()).unwrap(), 10);
    }

    /// Bytes that are not gzip at all are an invalid archive, not a panic.
    #[test]
    fn garbage_is_invalid() {
        assert_eq!(
            extract_code(b"this is not an archive", &UploadLimits::default()),
            Err("invalid_archive")
        );
        assert_eq!(
            extract_code(b"", &UploadLimits::default()),
            Err("invalid_archive")
        );
        let not_tar = gzip(&[0x55; 4096]);
        assert_eq!(
            extract_code(&not_tar, &UploadLimits::default()),
            Err("invalid_archive")
        );
    }

    /// A truncated `.tar.gz` is an invalid archive and leaves nothing behind.
    #[test]
    fn truncated_archive_is_invalid() {
        let content = vec![7u8; 100_000];
        let files: [(&str, &[u8]); 2] = [("a.py", b"x"), ("data.bin", &content)];
        let bytes = good_tar_gz(&files);
        let cut = &bytes[..bytes.len() / 2];
        assert_eq!(
            extract_code(cut, &UploadLimits::default()),
            Err("invalid_archive")
        );
    }

    /// A tar with only folders, or nothing at all, is an empty upload.
    #[test]
    fn folders_only_is_empty() {
        assert_eq!(refused(&[raw("d/", EntryType::Directory)]), "empty_upload");
        assert_eq!(refused(&[]), "empty_upload");
    }

    /// One entry of a generated tar: any name (bytes), type, mode and link name, and data whose
    /// length the header may misstate (`size`).
    #[derive(Debug, Clone)]
    struct Generated {
        name: Vec<u8>,
        kind: u8,
        mode: u32,
        size: Option<u64>,
        data: Vec<u8>,
        link: String,
    }

    fn generated_entry() -> impl Strategy<Value = Generated> {
        let name = prop_oneof![
            8 => hostile_name().prop_map(String::into_bytes),
            1 => vec(any::<u8>(), 0..120),
        ];
        let kind = prop_oneof![
            12 => Just(b'0'),
            2 => Just(b'5'),
            2 => prop::sample::select(b"\x00123467gxLKSVDMN".to_vec()),
            1 => any::<u8>(),
        ];
        let size = prop_oneof![
            8 => Just(None),
            1 => any::<u64>().prop_map(Some),
            1 => (0u64..1 << 40).prop_map(Some),
        ];
        (
            name,
            kind,
            0u32..0o1_000_000,
            size,
            vec(any::<u8>(), 0..120),
            hostile_name(),
        )
            .prop_map(|(name, kind, mode, size, data, link)| Generated {
                name,
                kind,
                mode,
                size,
                data,
                link,
            })
    }

    /// Plain files with honest headers: a well-formed archive to cut and damage.
    fn plain_entries() -> impl Strategy<Value = Vec<Generated>> {
        vec(
            ("[a-c]{1,3}(/[a-c]{1,3}){0,2}", vec(any::<u8>(), 0..120)),
            1..6,
        )
        .prop_map(|files| {
            files
                .into_iter()
                .map(|(name, data)| Generated {
                    name: name.into_bytes(),
                    kind: b'0',
                    mode: 0o644,
                    size: None,
                    data,
                    link: String::new(),
                })
                .collect()
        })
    }

    /// Appends one header and its data, padded to the block size; returns the header's offset.
    fn push_block(tar: &mut Vec<u8>, header: &Header, data: &[u8]) -> usize {
        let at = tar.len();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(data);
        tar.resize(tar.len().next_multiple_of(512), 0);
        at
    }

    /// The raw tar of `entries`, names passed through `resolve` (names over 100 bytes get a GNU
    /// long-name record first), and the offset of every header.
    fn raw_tar(entries: &[Generated], resolve: &dyn Fn(&str) -> String) -> (Vec<u8>, Vec<usize>) {
        let (mut tar, mut headers) = (Vec::new(), Vec::new());
        for entry in entries {
            let name = match std::str::from_utf8(&entry.name) {
                Ok(name) => resolve(name).into_bytes(),
                Err(_) => entry.name.clone(),
            };
            if name.len() > 100 {
                let mut long = raw("././@LongLink", EntryType::GNULongName).header();
                long.set_size(name.len() as u64 + 1);
                long.set_cksum();
                let mut data = name.clone();
                data.push(0);
                headers.push(push_block(&mut tar, &long, &data));
            }
            let link = resolve(&entry.link);
            let link = &link.as_bytes()[..link.len().min(100)];
            let mut header = Raw {
                name: &name[..name.len().min(100)],
                kind: EntryType::new(entry.kind),
                mode: entry.mode,
                size: entry.size.unwrap_or(entry.data.len() as u64),
                link,
            }
            .header();
            header.set_cksum();
            headers.push(push_block(&mut tar, &header, &entry.data));
        }
        tar.extend_from_slice(&[0; 1024]);
        (tar, headers)
    }

    proptest! {
        /// Any entries (escaping names, links, devices, unknown types, long names, sizes that
        /// lie, huge or not) are refused with a typed error or land inside the folder within
        /// the limits; nothing is written beside it.
        #[test]
        fn generated_archives_stay_inside(
            entries in vec(generated_entry(), 0..6),
            limits in any_limits(),
        ) {
            let _ = checked_upload(&limits, |dest, resolve| {
                let (tar, _) = raw_tar(&entries, resolve);
                extract(&gzip(&tar), dest, &limits)
            });
        }

        /// Arbitrary bytes, raw or behind a gzip header, and valid gzip of arbitrary bytes,
        /// are refused, never a panic.
        #[test]
        fn arbitrary_bytes_are_refused(
            bytes in vec(any::<u8>(), 0..2048),
            framing in 0..3,
            limits in any_limits(),
        ) {
            let bytes = match framing {
                0 => bytes,
                1 => [&b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"[..], &bytes].concat(),
                _ => gzip(&bytes),
            };
            let _ = checked_extract(&bytes, ArchiveKind::TarGz, &limits);
        }

        /// A well-formed archive cut anywhere, or with bytes overwritten (in the tar, headers
        /// re-checksummed or not, or in the gzip stream), is refused or extracted within the
        /// limits; never a panic.
        #[test]
        fn cut_and_damaged_archives(
            entries in plain_entries(),
            cut in any::<prop::sample::Index>(),
            damage in vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            mode in 0..4,
            fix_checksums in any::<bool>(),
            limits in any_limits(),
        ) {
            let (mut tar, headers) = raw_tar(&entries, &str::to_owned);
            let bytes = match mode {
                0 => {
                    let bytes = gzip(&tar);
                    bytes[..cut.index(bytes.len() + 1)].to_vec()
                }
                1 => gzip(&tar[..cut.index(tar.len() + 1)]),
                2 => {
                    let mut bytes = gzip(&tar);
                    for (at, byte) in &damage {
                        let at = at.index(bytes.len());
                        bytes[at] = *byte;
                    }
                    bytes
                }
                _ => {
                    for (at, byte) in &damage {
                        let at = at.index(tar.len());
                        tar[at] = *byte;
                    }
                    if fix_checksums {
                        for at in headers {
                            let mut header = Header::from_byte_slice(&tar[at..at + 512]).clone();
                            header.set_cksum();
                            tar[at..at + 512].copy_from_slice(header.as_bytes());
                        }
                    }
                    gzip(&tar)
                }
            };
            let _ = checked_extract(&bytes, ArchiveKind::TarGz, &limits);
        }
    }
}
