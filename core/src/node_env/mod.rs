//! Cached `node_modules` folders for Node previews, keyed by what they install.
//!
//! Installing a project's npm packages is the slowest step of a Node launch, so each distinct
//! install is done once and shared: the key is a sha256 of the lockfile (`package-lock.json`,
//! else `npm-shrinkwrap.json`; without one, the dependency sections of `package.json`) and the
//! Node major version (packages may ship per-version binaries). The install lives in
//! `<cache>/<key>/node_modules`; the project gets it through a `node_modules` symlink in its
//! working dir. Node resolves a package's own dependencies from its real path, so the link is
//! all a project needs. An uploaded `node_modules` is replaced by the link: uploads rarely
//! carry one, and when they do it may hold binaries built for another machine.
//!
//! With a lockfile the install is `npm ci` (exactly the locked tree), else `npm install`; both
//! with `--ignore-scripts`, so installing a user's dependencies runs none of their code, and
//! without audit or funding requests. Projects with no dependencies install nothing. Packages
//! that compile native code in an install script do not work, except the few previewd compiles
//! itself from the registry (the SQLite drivers): see the `native` submodule.
//!
//! When the package uses Prisma, its client is generated into the install too, since
//! `--ignore-scripts` skips the script that would make it: see the `prisma` submodule.
//!
//! As for Python envs, builds go into `<cache>/<key>.partial-<random>` and are renamed into
//! place only when complete (with a ready marker), so a crash or a timeout never leaves a
//! half-built install in use, and a tokio mutex per key makes concurrent launches wait for a
//! single build. Every step is reported as a line through the caller's `progress`.

mod native;
mod prisma;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::OnceCell;

use crate::cache_build::{BuildLocks, CacheKey, PartialDir, READY_MARKER};
use crate::install_step::{self, StepError};
use prisma::{PrismaInput, PRISMA_ENV_PREFIX};

/// Bumped when the layout of a cached install changes, so older ones are not reused.
const KEY_SCHEME: &str = "previewd-node-env-v2";
/// The lockfiles `npm ci` accepts, in the order npm prefers them.
const LOCKFILES: &[&str] = &["package-lock.json", "npm-shrinkwrap.json"];
/// The `package.json` sections that decide what gets installed without a lockfile.
const DEPENDENCY_SECTIONS: &[&str] = &["dependencies", "devDependencies", "optionalDependencies"];
/// How long an install may run unless [`NodeEnvs::install_timeout`] says otherwise.
const DEFAULT_INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a project's `node_modules` could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum NodeEnvError {
    /// `node` (env `PREVIEWD_NODE`, else `node` on `PATH`) does not run.
    #[error("could not run `{node}` ({reason}); install Node.js or point PREVIEWD_NODE at it")]
    Node { node: String, reason: String },
    /// `package.json` or the lockfile could not be read or parsed.
    #[error("could not read {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    /// npm or node could not be started.
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// npm exited unsuccessfully.
    #[error("`{command}` failed ({status}); its last output lines:\n{tail}")]
    Failed {
        command: String,
        status: String,
        tail: String,
    },
    /// npm ran past the timeout and was killed.
    #[error("`{command}` did not finish within {seconds} s and was stopped; its last output lines:\n{tail}")]
    Timeout {
        command: String,
        seconds: u64,
        tail: String,
    },
    /// `prisma generate` exited unsuccessfully.
    #[error("generating the Prisma client (`prisma generate --schema {schema}`) failed ({status}); Prisma's last output lines:\n{tail}")]
    PrismaGenerate {
        schema: String,
        status: String,
        tail: String,
    },
    /// A Prisma generator writes outside the package folder, where previewd cannot place it.
    #[error("the Prisma generator output `{output}` in {file} leaves the package folder; previewd generates the client where it installs the dependencies and can place it only inside the package folder")]
    PrismaOutput { output: String, file: PathBuf },
    /// A file or folder of the install could not be written, renamed, removed or linked.
    #[error("could not prepare {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A project ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEnv {
    /// The `node` executable, absolute.
    pub node: PathBuf,
    /// The cached `node_modules` the project links to; `None` when it has no dependencies.
    pub node_modules: Option<PathBuf>,
    /// Whether the install existed already.
    pub reused: bool,
}

/// The `node` in use: its executable and major version, asked once.
#[derive(Debug, Clone)]
struct NodeInfo {
    executable: PathBuf,
    major: String,
}

/// What decides an install: read from the project before anything runs.
#[derive(Debug, Clone, PartialEq)]
struct InstallInput {
    /// The `package.json` text, copied into the build.
    package_json: String,
    /// The lockfile's name and text, when there is one.
    lockfile: Option<(&'static str, String)>,
    /// The dependency sections of `package.json`, name → version range, sorted.
    dependencies: BTreeMap<String, String>,
    /// The Prisma client to generate after npm, when the package uses Prisma.
    prisma: Option<PrismaInput>,
}

impl InstallInput {
    /// Reads `package.json`, the lockfile beside it and its Prisma schema; `prisma_env` is
    /// previewd's `PRISMA_*` variables.
    async fn read(
        package_json: &Path,
        prisma_env: &BTreeMap<String, String>,
    ) -> Result<InstallInput, NodeEnvError> {
        let manifest_error = |reason: String| NodeEnvError::Manifest {
            path: package_json.to_path_buf(),
            reason,
        };
        let text = tokio::fs::read_to_string(package_json)
            .await
            .map_err(|e| manifest_error(e.to_string()))?;
        let parsed: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| manifest_error(e.to_string()))?;
        let mut dependencies = BTreeMap::new();
        for section in DEPENDENCY_SECTIONS {
            if let Some(entries) = parsed.get(section).and_then(|v| v.as_object()) {
                for (name, range) in entries {
                    let range = range.as_str().unwrap_or_default().to_string();
                    dependencies.insert(name.clone(), range);
                }
            }
        }
        let dir = package_json.parent().unwrap_or(Path::new("."));
        let mut lockfile = None;
        for name in LOCKFILES {
            if let Ok(text) = tokio::fs::read_to_string(dir.join(name)).await {
                lockfile = Some((*name, text));
                break;
            }
        }
        let prisma = {
            let (dir, env) = (dir.to_path_buf(), prisma_env.clone());
            tokio::task::spawn_blocking(move || PrismaInput::read(&dir, &parsed, &env))
                .await
                .map_err(|e| manifest_error(format!("reading the Prisma schema: {e}")))??
        };
        Ok(InstallInput {
            package_json: text,
            lockfile,
            dependencies,
            prisma,
        })
    }

    /// The cache key: the first 128 bits (hex) of a sha256 over what decides the install.
    fn key(&self, node_major: &str) -> String {
        let mut key = CacheKey::new(KEY_SCHEME);
        key.feed("node-major", node_major.as_bytes());
        match &self.lockfile {
            Some((name, text)) => {
                key.feed("lockfile-name", name.as_bytes());
                key.feed("lockfile", text.as_bytes());
            }
            None => {
                for (name, range) in &self.dependencies {
                    key.feed("dependency", name.as_bytes());
                    key.feed("range", range.as_bytes());
                }
            }
        }
        if let Some(prisma) = &self.prisma {
            prisma.feed_key(&mut key);
        }
        key.finish()
    }

    /// How many packages the install brings, for the progress line: the lockfile's package
    /// entries, else the direct dependencies.
    fn package_count(&self) -> (usize, &'static str) {
        let locked = self.lockfile.as_ref().and_then(|(_, text)| {
            let lock: serde_json::Value = serde_json::from_str(text).ok()?;
            let packages = lock.get("packages")?.as_object()?;
            Some(packages.keys().filter(|k| !k.is_empty()).count())
        });
        match locked {
            Some(count) => (count, "npm packages"),
            None => (self.dependencies.len(), "direct npm dependencies"),
        }
    }

    /// The npm arguments of the install.
    fn npm_args(&self) -> &'static [&'static str] {
        match self.lockfile {
            Some(_) => &["ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            None => &["install", "--ignore-scripts", "--no-audit", "--no-fund"],
        }
    }
}

/// Where `node_modules` installs live and how they are made.
pub struct NodeEnvs {
    cache_dir: PathBuf,
    node: String,
    npm: String,
    /// previewd's own `PRISMA_*` environment variables, for `prisma generate`.
    prisma_env: BTreeMap<String, String>,
    node_info: OnceCell<NodeInfo>,
    locks: BuildLocks,
    /// How long one install may run before it is killed and the launch fails. Default 10 min.
    pub install_timeout: Duration,
}

impl NodeEnvs {
    /// Prepares the cache at `cache_dir` (created if missing). `node` is env `PREVIEWD_NODE`,
    /// else `node`; `npm` is env `PREVIEWD_NPM`, else `npm`; neither runs before the first
    /// [`NodeEnvs::ensure`].
    pub fn new(cache_dir: PathBuf) -> std::io::Result<NodeEnvs> {
        std::fs::create_dir_all(&cache_dir)?;
        let cache_dir = std::fs::canonicalize(&cache_dir)?;
        let setting = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        Ok(NodeEnvs {
            cache_dir,
            node: setting("PREVIEWD_NODE", "node"),
            npm: setting("PREVIEWD_NPM", "npm"),
            prisma_env: std::env::vars()
                .filter(|(name, _)| name.starts_with(PRISMA_ENV_PREFIX))
                .collect(),
            node_info: OnceCell::new(),
            locks: BuildLocks::default(),
            install_timeout: DEFAULT_INSTALL_TIMEOUT,
        })
    }

    /// Makes the project whose manifest is `package_json` ready to run from `work_dir`:
    /// installs its dependencies (and generates its Prisma client) into the cache unless an
    /// identical install is there, links `<work_dir>/node_modules` to it, and copies the
    /// Prisma client generated outside `node_modules` into `work_dir`.
    pub async fn ensure(
        &self,
        package_json: &Path,
        work_dir: &Path,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<NodeEnv, NodeEnvError> {
        let node = self.node_info().await?;
        let input = InstallInput::read(package_json, &self.prisma_env).await?;
        if input.dependencies.is_empty() {
            progress("package.json declares no dependencies: nothing to install".into());
            return Ok(NodeEnv {
                node: node.executable.clone(),
                node_modules: None,
                reused: true,
            });
        }
        let key = input.key(&node.major);
        let short = &key[..8];
        let waiting =
            || format!("node_modules {short}…: waiting for the install already under way");
        let _build = self.locks.hold(&key, waiting, progress).await;
        let dir = self.cache_dir.join(&key);
        let reused = dir.join(READY_MARKER).is_file();
        if reused {
            progress(format!("node_modules {short}…: reusing the cached install"));
        } else {
            let started = Instant::now();
            self.build(&input, &dir, progress).await?;
            progress(format!(
                "node_modules ready in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
        }
        let node_modules = dir.join("node_modules");
        link(&node_modules, &work_dir.join("node_modules")).await?;
        if let Some(prisma) = &input.prisma {
            prisma.copy_outputs(&dir, work_dir, progress).await?;
        }
        Ok(NodeEnv {
            node: node.executable.clone(),
            node_modules: Some(node_modules),
            reused,
        })
    }

    /// Installs into `<dir>.partial-<random>` (and generates the Prisma client there) and
    /// renames it to `dir`.
    async fn build(
        &self,
        input: &InstallInput,
        dir: &Path,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), NodeEnvError> {
        remove_dir(dir).await?;
        let partial = PartialDir::new(dir);
        let build = partial.path().to_path_buf();
        tokio::fs::create_dir_all(&build)
            .await
            .map_err(io_error(&build))?;
        write_file(&build.join("package.json"), &input.package_json).await?;
        if let Some((name, text)) = &input.lockfile {
            write_file(&build.join(name), text).await?;
        }
        let (count, what) = input.package_count();
        let how = match &input.lockfile {
            Some((name, _)) => format!("npm ci, from {name}"),
            None => "npm install, no lockfile".to_string(),
        };
        progress(format!("installing {count} {what}… ({how})"));
        let mut command = Command::new(&self.npm);
        command.args(input.npm_args());
        self.run_npm(command, &build, progress).await?;
        // npm leaves no node_modules when there was nothing to install after all.
        tokio::fs::create_dir_all(build.join("node_modules"))
            .await
            .map_err(io_error(&build))?;
        let node = self.node_info().await?;
        self.provide_native(&build, node, progress).await?;
        if let Some(prisma) = &input.prisma {
            prisma
                .generate(&build, &node.executable, self.install_timeout, progress)
                .await?;
        }
        write_file(&build.join(READY_MARKER), "").await?;
        finish(partial).await
    }

    /// Runs npm in `cwd`, forwarding its output to `progress`, killing it after the timeout.
    async fn run_npm(
        &self,
        mut command: Command,
        cwd: &Path,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), NodeEnvError> {
        let shown = format!(
            "{} {}",
            self.npm,
            command
                .as_std()
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        command
            .env("npm_config_update_notifier", "false")
            .env("npm_config_progress", "false");
        install_step::run(command, cwd, self.install_timeout, progress)
            .await
            .map_err(|error| match error {
                StepError::Spawn(source) => NodeEnvError::Spawn {
                    program: self.npm.clone(),
                    source,
                },
                StepError::Failed { status, tail } => NodeEnvError::Failed {
                    command: shown,
                    status,
                    tail,
                },
                StepError::Timeout { tail } => NodeEnvError::Timeout {
                    command: shown,
                    seconds: self.install_timeout.as_secs(),
                    tail,
                },
            })
    }

    /// The node executable and its major version, asked once.
    async fn node_info(&self) -> Result<&NodeInfo, NodeEnvError> {
        self.node_info
            .get_or_try_init(|| async {
                let failed = |reason: String| NodeEnvError::Node {
                    node: self.node.clone(),
                    reason,
                };
                let output = Command::new(&self.node)
                    .args(["-p", "process.versions.node + ' ' + process.execPath"])
                    .stdin(Stdio::null())
                    .output()
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                if !output.status.success() {
                    return Err(failed(output.status.to_string()));
                }
                let text = String::from_utf8_lossy(&output.stdout);
                let (version, executable) = text
                    .trim()
                    .split_once(' ')
                    .ok_or_else(|| failed(format!("unexpected answer {text:?}")))?;
                Ok(NodeInfo {
                    executable: PathBuf::from(executable),
                    major: version.split('.').next().unwrap_or(version).to_string(),
                })
            })
            .await
    }
}

/// Renames the finished build `partial` into place; another process's finished install of the
/// same key there first is as good.
async fn finish(partial: PartialDir) -> Result<(), NodeEnvError> {
    let target = partial.target().to_path_buf();
    partial
        .finish(async |target: &Path| target.join(READY_MARKER).is_file())
        .await
        .map(drop)
        .map_err(io_error(&target))
}

/// Points `link_path` at `target`, replacing whatever is there (an older link, an uploaded
/// `node_modules`).
async fn link(target: &Path, link_path: &Path) -> Result<(), NodeEnvError> {
    if let Ok(meta) = tokio::fs::symlink_metadata(link_path).await {
        let removed = if meta.is_dir() {
            tokio::fs::remove_dir_all(link_path).await
        } else {
            tokio::fs::remove_file(link_path).await
        };
        removed.map_err(io_error(link_path))?;
    }
    tokio::fs::symlink(target, link_path)
        .await
        .map_err(io_error(link_path))
}

async fn write_file(path: &Path, contents: &str) -> Result<(), NodeEnvError> {
    tokio::fs::write(path, contents)
        .await
        .map_err(io_error(path))
}

/// Removes `path` and everything under it; a missing `path` is fine.
async fn remove_dir(path: &Path) -> Result<(), NodeEnvError> {
    match tokio::fs::remove_dir_all(path).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(NodeEnvError::Io {
            path: path.to_path_buf(),
            source: error,
        }),
        _ => Ok(()),
    }
}

/// Copies the folder `from` to `to` (created), files and folders; symbolic links are skipped.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Runs `work`, blocking file work on `path`, off the async runtime.
async fn blocking_io<F>(path: &Path, work: F) -> Result<(), NodeEnvError>
where
    F: FnOnce() -> std::io::Result<()> + Send + 'static,
{
    let done = tokio::task::spawn_blocking(work).await;
    done.unwrap_or_else(|panicked| Err(std::io::Error::other(panicked)))
        .map_err(io_error(path))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeEnvError {
    let path = path.to_path_buf();
    move |source| NodeEnvError::Io { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A project folder holding `files`, read as an install input.
    pub(super) async fn input(files: &[(&str, &str)]) -> InstallInput {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), files);
        InstallInput::read(&dir.path().join("package.json"), &BTreeMap::new())
            .await
            .unwrap()
    }

    pub(super) const PACKAGE: &str = r#"{"name": "a", "dependencies": {"express": "^4.21.2"}}"#;

    /// Writes `files` (relative paths, folders made) under `dir`.
    pub(super) fn write_files(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    /// With a lockfile, the key follows the lockfile and the Node major version only.
    #[tokio::test]
    async fn lockfile_decides_the_key() {
        let lock = r#"{"packages": {"": {}, "node_modules/express": {}}}"#;
        let a = input(&[("package.json", PACKAGE), ("package-lock.json", lock)]).await;
        let renamed = PACKAGE.replace("\"a\"", "\"b\"");
        let b = input(&[("package.json", &renamed), ("package-lock.json", lock)]).await;
        assert_eq!(
            a.key("20"),
            b.key("20"),
            "package.json edits outside the lock"
        );
        assert_ne!(a.key("20"), a.key("22"), "another Node major");
        let other = input(&[("package.json", PACKAGE), ("package-lock.json", "{}")]).await;
        assert_ne!(a.key("20"), other.key("20"), "another lockfile");
        assert_eq!(a.key("20").len(), 32);
        assert_eq!(a.package_count(), (1, "npm packages"));
        assert_eq!(a.npm_args()[0], "ci");
    }

    /// package-lock.json wins over npm-shrinkwrap.json, which is used alone too.
    #[tokio::test]
    async fn lockfile_preference() {
        let both = input(&[
            ("package.json", PACKAGE),
            ("package-lock.json", "{\"a\":1}"),
            ("npm-shrinkwrap.json", "{\"b\":1}"),
        ])
        .await;
        assert_eq!(both.lockfile.as_ref().unwrap().0, "package-lock.json");
        let shrinkwrap = input(&[("package.json", PACKAGE), ("npm-shrinkwrap.json", "{}")]).await;
        assert_eq!(shrinkwrap.lockfile.unwrap().0, "npm-shrinkwrap.json");
    }

    /// Without a lockfile, the dependency sections decide the key, in any order; scripts and
    /// names do not.
    #[tokio::test]
    async fn dependencies_decide_the_key_without_lockfile() {
        let a = input(&[(
            "package.json",
            r#"{"dependencies": {"express": "^5", "cors": "^2"}, "devDependencies": {"tsx": "^4"}}"#,
        )])
        .await;
        let b = input(&[(
            "package.json",
            r#"{"name": "x", "scripts": {"start": "node ."}, "devDependencies": {"tsx": "^4"}, "dependencies": {"cors": "^2", "express": "^5"}}"#,
        )])
        .await;
        assert_eq!(a.key("20"), b.key("20"));
        let c = input(&[(
            "package.json",
            r#"{"dependencies": {"express": "^4", "cors": "^2"}, "devDependencies": {"tsx": "^4"}}"#,
        )])
        .await;
        assert_ne!(a.key("20"), c.key("20"));
        assert_eq!(a.package_count(), (3, "direct npm dependencies"));
        assert_eq!(a.npm_args()[0], "install");
    }

    /// A broken package.json is an error naming the file, not a panic.
    #[tokio::test]
    async fn broken_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package.json"), "{ nope").unwrap();
        let err = InstallInput::read(&dir.path().join("package.json"), &BTreeMap::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("package.json"), "{err}");
    }

    /// The link replaces an uploaded node_modules folder and an older link alike.
    #[tokio::test]
    async fn link_replaces_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("cache/node_modules");
        std::fs::create_dir_all(&target).unwrap();
        let project = dir.path().join("project/node_modules");
        std::fs::create_dir_all(project.join("express")).unwrap();
        link(&target, &project).await.unwrap();
        assert_eq!(std::fs::read_link(&project).unwrap(), target);
        link(&target, &project).await.unwrap();
        assert_eq!(std::fs::read_link(&project).unwrap(), target);
    }

    /// Runs `ensure` on a project whose only dependency is a missing local tarball (npm fails
    /// without touching the network); returns the error and what is left in the cache.
    async fn failing_install(timeout: Duration) -> (NodeEnvError, Vec<String>) {
        let cache = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let manifest = project.path().join("package.json");
        std::fs::write(
            &manifest,
            r#"{"dependencies": {"gone": "file:./missing.tgz"}}"#,
        )
        .unwrap();
        let mut envs = NodeEnvs::new(cache.path().to_path_buf()).unwrap();
        envs.install_timeout = timeout;
        let lines = Mutex::new(Vec::new());
        let progress = |line: String| lines.lock().unwrap().push(line);
        let err = envs
            .ensure(&manifest, project.path(), &progress)
            .await
            .unwrap_err();
        let left = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        (err, left)
    }

    /// A failing npm is reported with its last lines; no `.partial-` folder is left behind.
    #[tokio::test]
    async fn failed_install_leaves_nothing() {
        let (err, left) = failing_install(DEFAULT_INSTALL_TIMEOUT).await;
        assert!(matches!(err, NodeEnvError::Failed { .. }), "{err}");
        assert!(err.to_string().contains("npm install"), "{err}");
        assert!(left.is_empty(), "{left:?}");
    }

    /// An install running past the timeout is killed; nothing is left behind either.
    #[tokio::test]
    async fn timed_out_install_leaves_nothing() {
        let (err, left) = failing_install(Duration::from_millis(1)).await;
        assert!(matches!(err, NodeEnvError::Timeout { .. }), "{err}");
        assert!(left.is_empty(), "{left:?}");
    }
}
