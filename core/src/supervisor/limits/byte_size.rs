//! Sizes in bytes as people write them (`512MiB`, `1 GiB`, `50MB`, `1.5G`, `4096`), shown back
//! in the unit they were most likely written in.

use std::fmt;
use std::str::FromStr;

/// A number of bytes; `0` stands for "no limit" wherever a limit takes one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// Units a size may carry, upper-cased: bare letters are binary, as in `docker --memory 512m`.
const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("B", 1),
    ("K", 1 << 10),
    ("KB", 1_000),
    ("KIB", 1 << 10),
    ("M", 1 << 20),
    ("MB", 1_000_000),
    ("MIB", 1 << 20),
    ("G", 1 << 30),
    ("GB", 1_000_000_000),
    ("GIB", 1 << 30),
    ("T", 1 << 40),
    ("TB", 1_000_000_000_000),
    ("TIB", 1 << 40),
];

/// Units a size is shown in, largest first; the first that divides it exactly wins.
const SHOWN: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("kB", 1_000),
];

impl ByteSize {
    /// `n` mebibytes.
    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n << 20)
    }

    /// `n` gibibytes.
    pub const fn gib(n: u64) -> ByteSize {
        ByteSize(n << 30)
    }

    /// The limit this size sets: `None` for `0`.
    pub fn limit(self) -> Option<u64> {
        (self.0 > 0).then_some(self.0)
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let unit = unit.trim().to_ascii_uppercase();
        let bad = || {
            format!("`{text}` is not a size: write a number with an optional unit (512MiB, 1GiB, 50MB, 4096)")
        };
        let multiplier = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, m)| *m)
            .ok_or_else(bad)?;
        let bytes = match number.split_once('.') {
            None => number
                .parse::<u64>()
                .map_err(|_| bad())?
                .checked_mul(multiplier),
            Some(_) => {
                let value = number.parse::<f64>().map_err(|_| bad())?;
                let bytes = (value * multiplier as f64).round();
                (bytes < u64::MAX as f64).then_some(bytes as u64)
            }
        };
        bytes
            .map(ByteSize)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match SHOWN
            .iter()
            .find(|(_, unit)| self.0 >= *unit && self.0.checked_rem(*unit) == Some(0))
        {
            Some((name, unit)) => write!(f, "{} {name}", self.0 / unit),
            None => write!(f, "{} B", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binary and decimal units, spaces, fractions and bare numbers; nonsense refused.
    #[test]
    fn parses_sizes() {
        let parse = |t: &str| t.parse::<ByteSize>().map(|s| s.0);
        assert_eq!(parse("512MiB"), Ok(512 << 20));
        assert_eq!(parse("512 mib"), Ok(512 << 20));
        assert_eq!(parse("512m"), Ok(512 << 20));
        assert_eq!(parse("50MB"), Ok(50_000_000));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("1.5G"), Ok(3 << 29));
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("0"), Ok(0));
        assert!(parse("").is_err());
        assert!(parse("lots").is_err());
        assert!(parse("12 parsecs").is_err());
        assert!(parse("1.2.3G").is_err());
        assert!(parse("99999999999TiB").unwrap_err().contains("too large"));
    }

    /// A size is shown in the largest unit that divides it exactly.
    #[test]
    fn shows_sizes() {
        assert_eq!(ByteSize::mib(512).to_string(), "512 MiB");
        assert_eq!(ByteSize::gib(1).to_string(), "1 GiB");
        assert_eq!(ByteSize(50_000_000).to_string(), "50 MB");
        assert_eq!(ByteSize(1536 << 20).to_string(), "1536 MiB");
        assert_eq!(ByteSize(1000).to_string(), "1 kB");
        assert_eq!(ByteSize(12_345).to_string(), "12345 B");
    }
}
