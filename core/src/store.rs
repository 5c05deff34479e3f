//! The embedded database: sled trees for generations and preview instances.
//!
//! Records are JSON values under their id. Writes that must survive a crash (a new generation,
//! every preview status change) are flushed before the caller answers; logs live in their own
//! tree, owned by [`crate::log_store`].

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Tree of [`GenerationRecord`]s by id.
const GENERATIONS: &str = "generations";
/// Tree of [`PreviewRecord`]s by id.
const PREVIEWS: &str = "previews";
/// Tree mapping a generation id to the id of its latest preview.
const LATEST_PREVIEW: &str = "latest_preview";
/// Tree of [`WarmRecord`]s by id.
const WARM: &str = "warm";
/// sled's page cache. Its default (1 GiB) would let a log flood grow previewd's memory by that
/// much; logs are written once and read mostly while fresh, so a small cache serves them.
const CACHE_BYTES: u64 = 32 << 20;

/// A storage failure. The database is local, so these are disk or corruption problems.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record {key}: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// An uploaded project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerationRecord {
    pub id: String,
    /// The user who uploaded it; nobody else can see it.
    pub owner: String,
    pub name: String,
    /// The plugin that claimed the project at upload, if any.
    pub framework: Option<String>,
    /// Why the plugin claimed it, in words.
    pub detection_reason: Option<String>,
    pub file_count: u64,
    pub total_bytes: u64,
    pub created_at: DateTime<Utc>,
}

/// Where a preview is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreviewStatus {
    Starting,
    Running,
    Stopping,
    Stopped,
    Failed,
}

impl PreviewStatus {
    /// Starting, running or stopping: a process may exist and a port is held.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            PreviewStatus::Starting | PreviewStatus::Running | PreviewStatus::Stopping
        )
    }

    /// The lowercase name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewStatus::Starting => "starting",
            PreviewStatus::Running => "running",
            PreviewStatus::Stopping => "stopping",
            PreviewStatus::Stopped => "stopped",
            PreviewStatus::Failed => "failed",
        }
    }
}

/// One launch of a generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviewRecord {
    pub id: String,
    pub generation_id: String,
    pub owner: String,
    pub status: PreviewStatus,
    pub framework: String,
    pub port: u16,
    /// The launcher's process id, once started.
    pub pid: Option<u32>,
    /// The process group the preview runs in (its own session).
    pub pgid: Option<i32>,
    /// The command line, for `/config` and the log.
    pub launch_command: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the app first answered HTTP.
    pub ready_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    /// Why it failed or stopped, in words.
    pub error: Option<String>,
    /// When the preview is stopped at the latest.
    pub expires_at: DateTime<Utc>,
    /// What the user asked for at launch, so a restart can ask again.
    #[serde(default)]
    pub options: LaunchOptions,
    /// The warm process the preview was started in, if it was: its processes and its cgroup
    /// carry this id rather than the preview's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_id: Option<String>,
}

/// What the user asked for at launch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchOptions {
    /// A plugin name overriding detection.
    pub framework: Option<String>,
    /// Extra environment for the app. Kept in the database (in the data dir), never shown by
    /// the API.
    pub env: std::collections::BTreeMap<String, String>,
    /// Whether the project's migrations are applied to its database before the app starts.
    #[serde(default)]
    pub migrate: bool,
}

/// The database handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    generations: sled::Tree,
    previews: sled::Tree,
    latest_preview: sled::Tree,
    warm: sled::Tree,
}

/// A warm process previewd started, kept until it is retired or handed a project, so that a
/// restart after a crash can kill what an earlier previewd left.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarmRecord {
    pub id: String,
    /// Its process group (the launcher's relay is the leader).
    pub pgid: i32,
}

impl Store {
    /// Opens (or creates) the database in `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        Ok(Store {
            generations: db.open_tree(GENERATIONS)?,
            previews: db.open_tree(PREVIEWS)?,
            latest_preview: db.open_tree(LATEST_PREVIEW)?,
            warm: db.open_tree(WARM)?,
            db,
        })
    }

    /// The underlying database, for modules that keep trees of their own.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Makes every write so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        // Not `flush_async`: its futures can stay pending forever when several are polled at
        // once (sled issues #1241 and #1308), which here froze every launch behind one.
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|join| StoreError::Sled(sled::Error::ReportableBug(join.to_string())))??;
        Ok(())
    }

    /// Saves a generation and flushes.
    pub async fn put_generation(&self, record: &GenerationRecord) -> Result<(), StoreError> {
        put(&self.generations, &record.id, record)?;
        self.flush().await
    }

    /// A generation by id, whoever owns it.
    pub fn generation(&self, id: &str) -> Result<Option<GenerationRecord>, StoreError> {
        get(&self.generations, id)
    }

    /// `owner`'s generations, oldest first.
    pub fn generations_of(&self, owner: &str) -> Result<Vec<GenerationRecord>, StoreError> {
        let mut list: Vec<GenerationRecord> = all(&self.generations)?
            .into_iter()
            .filter(|g: &GenerationRecord| g.owner == owner)
            .collect();
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(list)
    }

    /// Removes a generation and its previews' records, and flushes.
    pub async fn delete_generation(&self, id: &str) -> Result<(), StoreError> {
        for preview in self.previews_where(|p| p.generation_id == id)? {
            self.previews.remove(preview.id.as_bytes())?;
        }
        self.latest_preview.remove(id.as_bytes())?;
        self.generations.remove(id.as_bytes())?;
        self.flush().await
    }

    /// Saves a preview (and marks it its generation's latest) and flushes.
    pub async fn put_preview(&self, record: &PreviewRecord) -> Result<(), StoreError> {
        put(&self.previews, &record.id, record)?;
        self.latest_preview
            .insert(record.generation_id.as_bytes(), record.id.as_bytes())?;
        self.flush().await
    }

    /// A preview by id.
    pub fn preview(&self, id: &str) -> Result<Option<PreviewRecord>, StoreError> {
        get(&self.previews, id)
    }

    /// The latest preview of a generation.
    pub fn latest_preview(&self, generation_id: &str) -> Result<Option<PreviewRecord>, StoreError> {
        match self.latest_preview.get(generation_id.as_bytes())? {
            Some(id) => get(&self.previews, &String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// Notes a warm process and flushes.
    pub async fn put_warm(&self, record: &WarmRecord) -> Result<(), StoreError> {
        put(&self.warm, &record.id, record)?;
        self.flush().await
    }

    /// Forgets a warm process (handed a project, or gone) and flushes.
    pub async fn remove_warm(&self, id: &str) -> Result<(), StoreError> {
        self.warm.remove(id.as_bytes())?;
        self.flush().await
    }

    /// The warm processes noted.
    pub fn warm(&self) -> Result<Vec<WarmRecord>, StoreError> {
        all(&self.warm)
    }

    /// Every preview matching `keep`.
    pub fn previews_where(
        &self,
        keep: impl Fn(&PreviewRecord) -> bool,
    ) -> Result<Vec<PreviewRecord>, StoreError> {
        Ok(all(&self.previews)?
            .into_iter()
            .filter(|p| keep(p))
            .collect())
    }
}

fn put<T: Serialize>(tree: &sled::Tree, key: &str, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Corrupt {
        key: key.to_string(),
        source,
    })?;
    tree.insert(key.as_bytes(), bytes)?;
    Ok(())
}

fn get<T: DeserializeOwned>(tree: &sled::Tree, key: &str) -> Result<Option<T>, StoreError> {
    tree.get(key.as_bytes())?
        .map(|bytes| decode(key.as_bytes(), &bytes))
        .transpose()
}

fn all<T: DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<T>, StoreError> {
    tree.iter()
        .map(|entry| {
            let (key, bytes) = entry?;
            decode(&key, &bytes)
        })
        .collect()
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(id: &str, owner: &str) -> GenerationRecord {
        GenerationRecord {
            id: id.into(),
            owner: owner.into(),
            name: "demo".into(),
            framework: Some("fastapi".into()),
            detection_reason: None,
            file_count: 1,
            total_bytes: 10,
            created_at: Utc::now(),
        }
    }

    fn preview(id: &str, generation_id: &str) -> PreviewRecord {
        PreviewRecord {
            id: id.into(),
            generation_id: generation_id.into(),
            owner: "alice".into(),
            status: PreviewStatus::Running,
            framework: "fastapi".into(),
            port: 3001,
            pid: None,
            pgid: None,
            launch_command: None,
            created_at: Utc::now(),
            ready_at: None,
            ended_at: None,
            exit_code: None,
            error: None,
            expires_at: Utc::now(),
            options: LaunchOptions::default(),
            warm_id: None,
        }
    }

    /// Records survive reopening the database; listing is per owner; delete takes previews along.
    #[tokio::test]
    async fn generations_and_previews_persist() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .put_generation(&generation("g1", "alice"))
                .await
                .unwrap();
            store
                .put_generation(&generation("g2", "bob"))
                .await
                .unwrap();
            store.put_preview(&preview("p1", "g1")).await.unwrap();
            store.put_preview(&preview("p2", "g1")).await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let alice: Vec<_> = store
            .generations_of("alice")
            .unwrap()
            .into_iter()
            .map(|g| g.id)
            .collect();
        assert_eq!(alice, ["g1"]);
        assert_eq!(store.latest_preview("g1").unwrap().unwrap().id, "p2");
        store.delete_generation("g1").await.unwrap();
        assert!(store.generation("g1").unwrap().is_none());
        assert!(store.preview("p1").unwrap().is_none());
        assert!(store.latest_preview("g1").unwrap().is_none());
        assert!(store.generation("g2").unwrap().is_some());
    }
}
