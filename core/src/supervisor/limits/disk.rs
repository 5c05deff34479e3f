//! How much disk a preview's folders take: the blocks allocated to everything under them
//! (sparse files count what they really use, hard links once), never following symbolic links
//! (a project's `node_modules` is a link into the shared cache).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The unit of `st_blocks`.
const BLOCK: u64 = 512;

/// Bytes allocated under `roots` (which may not exist). Blocking: it walks the trees.
pub fn usage(roots: &[PathBuf]) -> u64 {
    let mut total = 0;
    let mut linked = HashSet::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(path) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.nlink() > 1 && !meta.is_dir() && !linked.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * BLOCK;
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&path) {
                stack.extend(entries.filter_map(Result::ok).map(|e| e.path()));
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files count by their blocks, links are not followed, hard links count once.
    #[test]
    fn measures_a_tree() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("project");
        fs::create_dir_all(dir.join("sub")).unwrap();
        let empty = usage(std::slice::from_ref(&dir));
        fs::write(dir.join("sub/data"), vec![1u8; 1 << 20]).unwrap();
        let with_file = usage(std::slice::from_ref(&dir));
        assert!(with_file - empty >= 1 << 20, "{with_file} - {empty}");

        fs::hard_link(dir.join("sub/data"), dir.join("again")).unwrap();
        std::os::unix::fs::symlink(root.path(), dir.join("loop")).unwrap();
        let linked = usage(std::slice::from_ref(&dir));
        assert!(linked - with_file < 64 << 10, "{linked} vs {with_file}");

        assert_eq!(usage(&[root.path().join("missing")]), 0);
    }
}
