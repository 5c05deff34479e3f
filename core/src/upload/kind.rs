//! Which archive format an upload is, from its Content-Type and its first bytes.

/// The archive formats `extract_archive` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A gzip-compressed tar (`.tar.gz`, `.tgz`).
    TarGz,
    /// A zip (`.zip`).
    Zip,
}

/// The gzip magic number.
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// Zip signatures a zip can start with: a local file header, an empty archive's end of central
/// directory, a spanned archive's marker.
const ZIP_MAGICS: [&[u8]; 3] = [b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"];

impl ArchiveKind {
    /// The kind from the Content-Type (`application/gzip`, `application/x-gzip`,
    /// `application/x-tar+gzip`, `application/zip`, `application/x-zip-compressed`, ...;
    /// parameters and case ignored) and/or the magic bytes at the start of the body. The magic
    /// bytes win when they disagree; `None` if neither is recognised (a generic type such as
    /// `application/octet-stream` with unknown bytes, or a plain uncompressed tar).
    pub fn sniff(content_type: Option<&str>, first_bytes: &[u8]) -> Option<ArchiveKind> {
        Self::from_magic(first_bytes).or_else(|| content_type.and_then(Self::from_content_type))
    }

    fn from_magic(first_bytes: &[u8]) -> Option<ArchiveKind> {
        if first_bytes.starts_with(GZIP_MAGIC) {
            Some(Self::TarGz)
        } else if ZIP_MAGICS
            .iter()
            .any(|magic| first_bytes.starts_with(magic))
        {
            Some(Self::Zip)
        } else {
            None
        }
    }

    fn from_content_type(content_type: &str) -> Option<ArchiveKind> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/gzip"
            | "application/x-gzip"
            | "application/x-gtar"
            | "application/x-tgz"
            | "application/x-tar+gzip"
            | "application/tar+gzip"
            | "application/x-compressed-tar" => Some(Self::TarGz),
            "application/zip"
            | "application/x-zip"
            | "application/x-zip-compressed"
            | "application/zip-compressed" => Some(Self::Zip),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Content types are recognised with parameters and in any case.
    #[test]
    fn content_types() {
        let sniff = |content_type| ArchiveKind::sniff(Some(content_type), b"");
        assert_eq!(sniff("application/gzip"), Some(ArchiveKind::TarGz));
        assert_eq!(
            sniff("Application/X-GZIP; charset=binary"),
            Some(ArchiveKind::TarGz)
        );
        assert_eq!(sniff("application/x-tar+gzip"), Some(ArchiveKind::TarGz));
        assert_eq!(sniff("application/zip"), Some(ArchiveKind::Zip));
        assert_eq!(
            sniff("application/x-zip-compressed"),
            Some(ArchiveKind::Zip)
        );
        assert_eq!(sniff("application/octet-stream"), None);
        assert_eq!(ArchiveKind::sniff(None, b""), None);
    }

    /// Magic bytes are recognised and win over a contradicting content type.
    #[test]
    fn magic_bytes_win() {
        assert_eq!(
            ArchiveKind::sniff(None, b"\x1f\x8b\x08\x00"),
            Some(ArchiveKind::TarGz)
        );
        assert_eq!(
            ArchiveKind::sniff(None, b"PK\x03\x04rest"),
            Some(ArchiveKind::Zip)
        );
        assert_eq!(
            ArchiveKind::sniff(Some("application/zip"), b"\x1f\x8b"),
            Some(ArchiveKind::TarGz)
        );
        assert_eq!(
            ArchiveKind::sniff(Some("application/gzip"), b"PK\x05\x06"),
            Some(ArchiveKind::Zip)
        );
        assert_eq!(
            ArchiveKind::sniff(Some("application/zip"), b"garbage"),
            Some(ArchiveKind::Zip)
        );
        assert_eq!(ArchiveKind::sniff(Some("text/plain"), b"garbage"), None);
    }
}
