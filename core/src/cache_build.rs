//! What every cache of built things shares (Python virtualenvs, the uv tool venv, `node_modules`
//! installs, compiled native addons): a key hashed from everything that decides the build, so
//! identical inputs share one entry and any change gets a new one; a lock per key, so
//! concurrent launches wait for one build; and a build folder that is renamed into place only
//! when complete, so nobody ever uses a half-built entry.
//!
//! Two processes sharing the cache may build the same entry at once: the first rename wins and
//! the other process uses the winner's ([`Finish::AlreadyThere`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;

/// The file inside a finished entry that says it is complete.
pub const READY_MARKER: &str = ".previewd-ready";

/// A cache key being computed: labelled, length-prefixed values fed into a sha256, so no two
/// different inputs run together into the same bytes.
pub struct CacheKey(Sha256);

impl CacheKey {
    /// A key of the layout `scheme` (bumped when an entry's layout changes, so older entries
    /// are not reused).
    pub fn new(scheme: &str) -> CacheKey {
        let mut key = CacheKey(Sha256::new());
        key.feed("scheme", scheme.as_bytes());
        key
    }

    /// Adds `value`, under `label`.
    pub fn feed(&mut self, label: &str, value: &[u8]) {
        self.0.update(label.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }

    /// The key: the first 128 bits of the sha256, in hex.
    pub fn finish(self) -> String {
        hex::encode(&self.0.finalize()[..16])
    }
}

/// The builds under way in this process, a mutex per key, so concurrent launches wanting the
/// same entry wait for a single build.
#[derive(Default)]
pub struct BuildLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl BuildLocks {
    /// Holds the build of `key`; when another holds it, says `waiting` through `progress` and
    /// waits for it.
    pub async fn hold(
        &self,
        key: &str,
        waiting: impl FnOnce() -> String,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(key.to_string()).or_default().clone()
        };
        match lock.clone().try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                progress(waiting());
                lock.lock_owned().await
            }
        }
    }
}

/// How [`PartialDir::finish`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// This build was renamed into place.
    Renamed,
    /// Another process finished the same entry first; its entry stays and this build was
    /// discarded.
    AlreadyThere,
}

/// A `.partial-` build folder, removed when dropped (error, timeout, cancelled launch) unless
/// [`PartialDir::finish`] renamed it into place.
pub struct PartialDir {
    path: PathBuf,
    target: PathBuf,
    keep: bool,
}

impl PartialDir {
    /// A fresh partial folder name for `target` (`<target>.partial-<random>`); nothing is
    /// created.
    pub fn new(target: &Path) -> PartialDir {
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".partial-{}", uuid::Uuid::new_v4().simple()));
        PartialDir {
            path: target.with_file_name(name),
            target: target.to_path_buf(),
            keep: false,
        }
    }

    /// Where the build goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the build to its final path. When that fails because another process put a
    /// `complete` entry there first, that one is used; the error otherwise.
    pub async fn finish(
        mut self,
        complete: impl AsyncFnOnce(&Path) -> bool,
    ) -> std::io::Result<Finish> {
        match tokio::fs::rename(&self.path, &self.target).await {
            Ok(()) => {
                self.keep = true;
                Ok(Finish::Renamed)
            }
            Err(_) if complete(&self.target).await => Ok(Finish::AlreadyThere),
            Err(error) => Err(error),
        }
    }
}

impl Drop for PartialDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.path.display(), %error, "could not remove a partial build");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partial dir sits next to its target and is removed when dropped unfinished.
    #[tokio::test]
    async fn partial_dirs() {
        let cache = tempfile::tempdir().unwrap();
        let target = cache.path().join("key");
        let partial = PartialDir::new(&target);
        assert_eq!(partial.path().parent(), Some(cache.path()));
        let name = partial
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("key.partial-"), "{name}");
        tokio::fs::create_dir(partial.path()).await.unwrap();
        let path = partial.path().to_path_buf();
        drop(partial);
        assert!(!path.exists(), "an unfinished partial dir is removed");
    }

    /// Labels and lengths keep different inputs apart.
    #[test]
    fn keys_keep_values_apart() {
        let key = |values: &[(&str, &str)]| {
            let mut key = CacheKey::new("test-v1");
            for (label, value) in values {
                key.feed(label, value.as_bytes());
            }
            key.finish()
        };
        let ab = key(&[("x", "ab"), ("y", "")]);
        assert_eq!(ab.len(), 32);
        assert_eq!(ab, key(&[("x", "ab"), ("y", "")]));
        assert_ne!(ab, key(&[("x", "a"), ("y", "b")]));
        assert_ne!(ab, key(&[("y", "ab"), ("x", "")]));
    }
}
