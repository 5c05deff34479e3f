//! Wording shared by the lines previewd shows users (log lines, progress).

/// `n` and `noun`, plural unless `n` is 1: "1 route", "3 routes".
pub fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_unless_one() {
        assert_eq!(counted(0, "route"), "0 routes");
        assert_eq!(counted(1, "route"), "1 route");
        assert_eq!(counted(12, "package"), "12 packages");
    }
}
