//! Cached Python virtualenvs, keyed by what they install.
//!
//! Every Python preview runs `runtimes/python/launcher.py` with a virtualenv's own interpreter.
//! Building a virtualenv is the slowest step of a launch, so this module builds each distinct
//! one once and reuses it: the key is a sha256 of everything that decides its contents (the
//! base python, the installer, the launcher's requirements and the text of each project
//! manifest). Projects without manifests all share the one base env.
//!
//! Builds go into `<cache>/<key>.partial-<random>` and are renamed to `<cache>/<key>` only once
//! complete, with a ready marker inside, so a crash never leaves a half-built env in use and a
//! restarted server reuses finished ones. Within the process a tokio mutex per key makes
//! concurrent requests for the same env wait for a single build.
//!
//! The installer is `uv` when available (`PREVIEWD_UV`, else `uv` on `PATH`): a warm build takes
//! well under a second. Without it, `python3 -m venv` + pip does the same, much slower.
//!
//! Manifests: `requirements*.txt` files are passed with `-r`. For `pyproject.toml`, only PEP 621
//! `[project].dependencies` are installed (uv reads the file with `-r`; with pip the dependency
//! strings are read out of the file here and passed as arguments); Poetry's
//! `[tool.poetry.dependencies]` and dynamic dependencies are not installed, which the progress
//! lines say. When a project has manifests, the launcher's base requirements are installed in the
//! same resolver run with their pins removed, so the project's own pins win.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, OnceCell};
use tracing::Instrument;

/// The file inside a finished env that says it is complete.
const READY_MARKER: &str = ".previewd-ready";
/// The launcher's requirements as installed into an env, kept inside it for reference.
const BASE_REQUIREMENTS_FILE: &str = "previewd-requirements.txt";
/// Bumped when the layout of an env changes, so older envs are not reused.
const KEY_SCHEME: &str = "previewd-python-env-v1";
/// How many of an installer's last output lines an error carries.
const TAIL_LINES: usize = 20;
/// How long one installer step may run unless [`PythonEnvs::install_timeout`] says otherwise.
const DEFAULT_INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long asking the base python for its version may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// A `.partial-` dir younger than this may belong to a live build in another process.
const MIN_STALE_PARTIAL_AGE: Duration = Duration::from_secs(3600);

/// Why a virtualenv could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The cache directory could not be created or resolved.
    #[error("could not create the python env cache directory {path}: {source}")]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `PREVIEWD_UV` names a `uv` that does not run.
    #[error("PREVIEWD_UV is set to {path}, but `{path} --version` did not work: {reason}")]
    Uv {
        /// The configured path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The base python (`PREVIEWD_PYTHON`, else `python3`) does not run.
    #[error(
        "could not run the base python `{python}` ({reason}); install Python 3 or point \
         PREVIEWD_PYTHON at an interpreter"
    )]
    Python {
        /// The configured interpreter.
        python: String,
        /// What went wrong.
        reason: String,
    },
    /// A project manifest could not be read.
    #[error("could not read the requirements manifest {path}: {source}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An installer program could not be started.
    #[error("could not start {program} to {step}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// What it was meant to do.
        step: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An installer step exited unsuccessfully.
    #[error("{step} failed ({status}); its last output lines:\n{tail}")]
    Failed {
        /// What was being done, e.g. "installing requirements with uv 0.13.9".
        step: String,
        /// The exit status as text.
        status: String,
        /// The last output lines.
        tail: String,
    },
    /// An installer step ran past the timeout and was killed.
    #[error(
        "{step} did not finish within {seconds} s and was stopped; its last output lines:\n{tail}"
    )]
    Timeout {
        /// What was being done.
        step: String,
        /// The timeout in seconds.
        seconds: u64,
        /// The last output lines.
        tail: String,
    },
    /// A file or directory of the env could not be written, renamed or removed.
    #[error("could not prepare the virtualenv at {path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A ready virtualenv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    /// The env's interpreter, `<venv>/bin/python`, absolute; run it directly.
    pub python: PathBuf,
    /// The env's cache key (hex).
    pub key: String,
    /// Whether the env existed already (true) or was built by this call (false).
    pub reused: bool,
}

/// Where virtualenvs live and how they are built.
pub struct PythonEnvs {
    cache_dir: PathBuf,
    installer: Installer,
    base_python: String,
    base_python_info: OnceCell<BasePython>,
    uv_cache_dir: Option<OsString>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// How long one installer step (creating the env, installing into it) may run before it is
    /// killed and the build fails. Default: 10 minutes.
    pub install_timeout: Duration,
}

/// The program that creates envs and installs into them.
#[derive(Debug, Clone)]
enum Installer {
    /// `uv venv` + `uv pip install`.
    Uv { program: PathBuf, version: String },
    /// `python -m venv` + `<venv>/bin/python -m pip install`.
    Pip,
}

impl Installer {
    /// The name that goes into env keys: envs built by different installers are not shared.
    fn kind(&self) -> &'static str {
        match self {
            Installer::Uv { .. } => "uv",
            Installer::Pip => "pip",
        }
    }

    fn describe(&self) -> String {
        match self {
            Installer::Uv { version, .. } => version.clone(),
            Installer::Pip => "venv+pip".into(),
        }
    }
}

/// The interpreter envs are created from, resolved once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BasePython {
    /// e.g. `3.11.7`.
    version: String,
    /// The real interpreter behind a shim, e.g. `/root/.pyenv/versions/3.11.7/bin/python3`.
    executable: PathBuf,
}

impl PythonEnvs {
    /// Prepares the cache at `cache_dir` (e.g. `<data-dir>/cache/python-envs`, created if
    /// missing) and picks the installer: `uv` from env `PREVIEWD_UV` (a path; an error if it
    /// does not run), else `uv` on `PATH`, else `python3 -m venv` + pip. The base python is env
    /// `PREVIEWD_PYTHON`, else `python3`; it is first run by [`PythonEnvs::ensure`].
    /// `PREVIEWD_UV_CACHE_DIR`, when set, becomes uv's `UV_CACHE_DIR`.
    pub fn new(cache_dir: PathBuf) -> Result<PythonEnvs, ProvisionError> {
        std::fs::create_dir_all(&cache_dir).map_err(|source| ProvisionError::CacheDir {
            path: cache_dir.clone(),
            source,
        })?;
        let cache_dir =
            std::fs::canonicalize(&cache_dir).map_err(|source| ProvisionError::CacheDir {
                path: cache_dir,
                source,
            })?;
        let installer = find_installer()?;
        let base_python = non_empty_env("PREVIEWD_PYTHON")
            .and_then(|value| value.into_string().ok())
            .unwrap_or_else(|| "python3".into());
        tracing::info!(
            cache_dir = %cache_dir.display(),
            installer = %installer.describe(),
            base_python = %base_python,
            "python envs ready"
        );
        Ok(PythonEnvs {
            cache_dir,
            installer,
            base_python,
            base_python_info: OnceCell::new(),
            uv_cache_dir: non_empty_env("PREVIEWD_UV_CACHE_DIR"),
            locks: Mutex::new(HashMap::new()),
            install_timeout: DEFAULT_INSTALL_TIMEOUT,
        })
    }

    /// Which installer is in use, for the `/config` answer and logs: `"uv 0.13.9"` or
    /// `"venv+pip"`.
    pub fn installer(&self) -> String {
        self.installer.describe()
    }

    /// Returns a ready virtualenv holding `base_requirements` (the text of
    /// `runtimes/python/requirements.txt`) plus the project's own requirement manifests
    /// (absolute paths of `requirements*.txt` or `pyproject.toml` files), building it unless an
    /// identical one is cached. With manifests, the base requirements are installed unpinned in
    /// the same resolver run, so the project's pins win.
    ///
    /// Every step is reported through `progress` as a line for the user, including each line the
    /// installer prints. `project_dir` is the installer's cwd, so relative references inside
    /// requirement files resolve against the project.
    pub async fn ensure(
        &self,
        base_requirements: &str,
        project_manifests: &[PathBuf],
        project_dir: &Path,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<PythonEnv, ProvisionError> {
        let started = Instant::now();
        let python = self.base_python().await?;
        let mut manifests = Vec::with_capacity(project_manifests.len());
        for path in project_manifests {
            manifests.push(Manifest::read(path).await?);
        }
        let reads_pyproject = matches!(self.installer, Installer::Uv { .. });
        let plan = InstallPlan::new(base_requirements, &manifests, reads_pyproject);
        let key = env_key(
            self.installer.kind(),
            python,
            &plan,
            &manifests,
            project_dir,
        );
        let span = tracing::info_span!("python_env", key = %short(&key));
        async {
            let lock = self.lock_for(&key);
            let _build = match lock.try_lock() {
                Ok(guard) => guard,
                Err(_) => {
                    progress(format!(
                        "python env {}: waiting for the build of the same env already under way",
                        short(&key)
                    ));
                    lock.lock().await
                }
            };
            let dir = self.cache_dir.join(&key);
            let env = PythonEnv {
                python: dir.join("bin").join("python"),
                key: key.clone(),
                reused: true,
            };
            if is_ready(&dir).await {
                tracing::debug!("reusing cached python env");
                progress(format!(
                    "python env {}: reusing cached virtualenv",
                    short(&key)
                ));
                return Ok(env);
            }
            progress(format!(
                "python env {}: not cached yet, building it",
                short(&key)
            ));
            tracing::info!(installer = %self.installer.describe(), "building python env");
            let result = self
                .build(&key, &dir, python, &plan, project_dir, progress)
                .await;
            match result {
                Ok(reused) => {
                    if !reused {
                        let seconds = started.elapsed().as_secs_f64();
                        tracing::info!(seconds, "python env built");
                        progress(format!("virtualenv ready in {seconds:.1} s"));
                    }
                    Ok(PythonEnv { reused, ..env })
                }
                Err(error) => {
                    tracing::warn!(%error, "python env build failed");
                    Err(error)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Builds the env into a `.partial-` dir and renames it to `dir`. Returns true when another
    /// process finished the same env first and that one is used instead.
    async fn build(
        &self,
        key: &str,
        dir: &Path,
        python: &BasePython,
        plan: &InstallPlan,
        project_dir: &Path,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<bool, ProvisionError> {
        self.discard_leftovers(dir).await?;
        let partial = PartialDir {
            path: self
                .cache_dir
                .join(format!("{key}.partial-{}", uuid::Uuid::new_v4().simple())),
            keep: false,
        };
        let venv = partial.path.as_path();
        let venv_python = venv.join("bin").join("python");

        progress(format!(
            "creating virtualenv ({}, Python {})",
            self.installer.describe(),
            python.version
        ));
        let create = match &self.installer {
            Installer::Uv { program, .. } => {
                let mut command = self.uv_command(program);
                command
                    .arg("venv")
                    .arg("--quiet")
                    .arg("--relocatable")
                    .arg("--prompt")
                    .arg("previewd")
                    .arg("--python")
                    .arg(&python.executable)
                    .arg(venv);
                command
            }
            Installer::Pip => {
                let mut command = Command::new(&python.executable);
                command
                    .args(["-m", "venv", "--prompt", "previewd"])
                    .arg(venv);
                command
            }
        };
        self.run_step("creating the virtualenv", create, &self.cache_dir, progress)
            .await?;

        let base_file = venv.join(BASE_REQUIREMENTS_FILE);
        write_file(&base_file, plan.base.as_bytes()).await?;
        for note in &plan.notes {
            progress(note.clone());
        }
        progress(format!("installing {}…", plan.summary));
        let mut install = match &self.installer {
            Installer::Uv { program, .. } => {
                let mut command = self.uv_command(program);
                command
                    .arg("pip")
                    .arg("install")
                    .arg("--python")
                    .arg(&venv_python);
                command
            }
            Installer::Pip => {
                let mut command = Command::new(&venv_python);
                command.args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--progress-bar",
                    "off",
                ]);
                command
            }
        };
        install.arg("-r").arg(&base_file);
        for source in &plan.sources {
            match source {
                Source::File(path) => {
                    install.arg("-r").arg(path);
                }
                Source::Requirements(requirements) => {
                    install.args(requirements);
                }
            }
        }
        let step = format!("installing requirements with {}", self.installer.describe());
        self.run_step(&step, install, project_dir, progress).await?;

        if matches!(self.installer, Installer::Pip) {
            // pip writes the build path into script shebangs; point them at the final path.
            repoint_scripts(&venv.join("bin"), venv, dir).await?;
        }
        let marker = serde_json::json!({
            "key": key,
            "installer": self.installer.describe(),
            "python": python.version,
            "manifests": plan.manifest_names,
            "built_at_unix": SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
        });
        write_file(&venv.join(READY_MARKER), marker.to_string().as_bytes()).await?;

        match tokio::fs::rename(venv, dir).await {
            Ok(()) => {
                partial.keep();
                Ok(false)
            }
            // Another process sharing the cache dir finished the same env first.
            Err(_) if is_ready(dir).await => Ok(true),
            Err(source) => Err(ProvisionError::Io {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }

    /// Removes an unfinished `dir` (no ready marker) and `.partial-` dirs old enough that no
    /// live build can own them (crash leftovers).
    async fn discard_leftovers(&self, dir: &Path) -> Result<(), ProvisionError> {
        if tokio::fs::symlink_metadata(dir).await.is_ok() {
            tracing::info!(dir = %dir.display(), "discarding an unfinished python env");
            remove_dir(dir).await?;
        }
        let stale_after = MIN_STALE_PARTIAL_AGE.max(self.install_timeout * 3);
        let Ok(mut entries) = tokio::fs::read_dir(&self.cache_dir).await else {
            return Ok(());
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            if !entry.file_name().to_string_lossy().contains(".partial-") {
                continue;
            }
            let age = entry
                .metadata()
                .await
                .ok()
                .and_then(|meta| meta.modified().ok())
                .and_then(|modified| modified.elapsed().ok());
            if age.is_some_and(|age| age > stale_after) {
                let path = entry.path();
                tracing::info!(dir = %path.display(), "discarding a stale partial python env");
                if let Err(error) = remove_dir(&path).await {
                    tracing::warn!(%error, "could not remove a stale partial python env");
                }
            }
        }
        Ok(())
    }

    /// The base python's version and real executable, asked once.
    async fn base_python(&self) -> Result<&BasePython, ProvisionError> {
        self.base_python_info
            .get_or_try_init(|| probe_python(&self.base_python))
            .await
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(key.to_string()).or_default().clone()
    }

    fn uv_command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_NO_PROGRESS", "1")
            .env("NO_COLOR", "1");
        if let Some(cache) = &self.uv_cache_dir {
            command.env("UV_CACHE_DIR", cache);
        }
        command
    }

    /// Runs one installer step with stdin closed, forwarding its output lines to `progress` as
    /// they arrive, killing it after [`PythonEnvs::install_timeout`].
    async fn run_step(
        &self,
        step: &str,
        mut command: Command,
        cwd: &Path,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), ProvisionError> {
        // Requirements can run code (sdist builds): keep previewd's own settings from it.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PREVIEWD_") {
                command.env_remove(name);
            }
        }
        command
            .current_dir(cwd)
            .env("PIP_NO_INPUT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        tracing::debug!(%program, step, "running installer step");
        let mut child = command.spawn().map_err(|source| ProvisionError::Spawn {
            program,
            step: step.to_string(),
            source,
        })?;
        let (lines_tx, mut lines) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward_lines(stdout, lines_tx.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_lines(stderr, lines_tx.clone()));
        }
        drop(lines_tx);
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let run = async {
            while let Some(line) = lines.recv().await {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
                progress(line);
            }
            child.wait().await
        };
        let outcome = tokio::time::timeout(self.install_timeout, run).await;
        let tail_text = || {
            if tail.is_empty() {
                "  (no output)".to_string()
            } else {
                tail.iter()
                    .map(|line| format!("  {line}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        };
        match outcome {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(ProvisionError::Failed {
                step: step.to_string(),
                status: status.to_string(),
                tail: tail_text(),
            }),
            Ok(Err(error)) => Err(ProvisionError::Failed {
                step: step.to_string(),
                status: format!("could not wait for it: {error}"),
                tail: tail_text(),
            }),
            Err(_) => {
                // Kill it now rather than when `child` is dropped, so it is gone by the time
                // the error is reported.
                if let Err(error) = child.start_kill() {
                    tracing::warn!(%error, "could not kill a timed-out installer");
                }
                Err(ProvisionError::Timeout {
                    step: step.to_string(),
                    seconds: self.install_timeout.as_secs(),
                    tail: tail_text(),
                })
            }
        }
    }
}

/// A `.partial-` build dir, removed when dropped (error, timeout or cancelled future) unless
/// [`PartialDir::keep`] says it became the finished env.
struct PartialDir {
    path: PathBuf,
    keep: bool,
}

impl PartialDir {
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for PartialDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.path.display(), %error, "could not remove a partial python env");
            }
        }
    }
}

/// One of the project's requirement manifests, read.
#[derive(Debug, Clone)]
struct Manifest {
    /// As given, absolute.
    path: PathBuf,
    /// The file name, e.g. `requirements.txt`; it says how the file is read.
    name: String,
    /// The contents, part of the env key.
    text: String,
}

impl Manifest {
    async fn read(path: &Path) -> Result<Manifest, ProvisionError> {
        let text =
            tokio::fs::read_to_string(path)
                .await
                .map_err(|source| ProvisionError::Manifest {
                    path: path.to_path_buf(),
                    source,
                })?;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Manifest {
            path: path.to_path_buf(),
            name,
            text,
        })
    }

    fn is_pyproject(&self) -> bool {
        self.name == "pyproject.toml"
    }
}

/// What goes on the install command line after the base requirements file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// `-r <file>`.
    File(PathBuf),
    /// Requirement strings read out of a `pyproject.toml`, for pip, which cannot read one.
    Requirements(Vec<String>),
}

/// How one env is installed: decided from the inputs alone, before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InstallPlan {
    /// The launcher's requirements as installed: pinned alone, unpinned next to manifests.
    base: String,
    /// The project's manifests as install arguments.
    sources: Vec<Source>,
    /// Progress lines about manifest contents that are not installed.
    notes: Vec<String>,
    /// What is installed, for the progress line, e.g. `requirements.txt (12 packages) and the
    /// launcher's packages (fastapi, uvicorn[standard])`.
    summary: String,
    /// Whether a manifest refers to files next to it (`-r other.txt`, `-e .`, `./pkg`): then the
    /// env also depends on the project dir and is not shared between projects.
    local_references: bool,
    /// The manifests' file names, recorded in the ready marker.
    manifest_names: Vec<String>,
}

impl InstallPlan {
    /// `reads_pyproject`: the installer takes a `pyproject.toml` with `-r` (uv does, pip does
    /// not: it gets the dependency strings read out of the file here).
    fn new(base_requirements: &str, manifests: &[Manifest], reads_pyproject: bool) -> InstallPlan {
        let mut sources = Vec::new();
        let mut notes = Vec::new();
        let mut described = Vec::new();
        let mut local_references = false;
        for manifest in manifests {
            if !manifest.is_pyproject() {
                described.push(packages(&manifest.name, count_requirements(&manifest.text)));
                local_references |= refers_to_local_files(&manifest.text);
                sources.push(Source::File(manifest.path.clone()));
                continue;
            }
            match pep621_dependencies(&manifest.text) {
                Some(dependencies) if !dependencies.is_empty() => {
                    described.push(packages(&manifest.name, dependencies.len()));
                    sources.push(if reads_pyproject {
                        Source::File(manifest.path.clone())
                    } else {
                        Source::Requirements(dependencies)
                    });
                }
                Some(_) => notes.push(format!(
                    "{}: [project].dependencies is empty; nothing to install from it",
                    manifest.name
                )),
                None if has_poetry_dependencies(&manifest.text) => notes.push(format!(
                    "{}: Poetry dependencies ([tool.poetry.dependencies]) are not installed; \
                     list them in requirements.txt or in [project].dependencies",
                    manifest.name
                )),
                None => notes.push(format!(
                    "{}: no static [project].dependencies list; nothing installed from it",
                    manifest.name
                )),
            }
        }
        // Alone, the launcher's packages keep their tested pins; next to the project's
        // requirements they go unpinned into the same resolver run, so the project's pins win.
        let base = if sources.is_empty() {
            base_requirements.to_string()
        } else {
            unpinned(base_requirements)
        };
        described.push(format!(
            "the launcher's packages ({})",
            requirement_names(&base)
        ));
        InstallPlan {
            base,
            sources,
            notes,
            summary: join_words(&described),
            local_references,
            manifest_names: manifests.iter().map(|m| m.name.clone()).collect(),
        }
    }
}

/// The key naming an env: the first 128 bits (hex) of a sha256 over everything that decides
/// what gets installed.
fn env_key(
    installer: &str,
    python: &BasePython,
    plan: &InstallPlan,
    manifests: &[Manifest],
    project_dir: &Path,
) -> String {
    let mut hasher = Sha256::new();
    let mut feed = |label: &str, value: &[u8]| {
        hasher.update(label.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value);
    };
    feed("scheme", KEY_SCHEME.as_bytes());
    feed("installer", installer.as_bytes());
    feed("python-version", python.version.as_bytes());
    feed("python", python.executable.as_os_str().as_encoded_bytes());
    feed("base", plan.base.as_bytes());
    for manifest in manifests {
        feed("manifest-name", manifest.name.as_bytes());
        feed("manifest", manifest.text.as_bytes());
    }
    if plan.local_references {
        feed("project-dir", project_dir.as_os_str().as_encoded_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// The short form of a key for progress lines: `3f2a1b0c…`.
fn short(key: &str) -> String {
    format!("{}…", key.get(..8).unwrap_or(key))
}

fn packages(name: &str, count: usize) -> String {
    let plural = if count == 1 { "" } else { "s" };
    format!("{name} ({count} package{plural})")
}

/// `a`, `a and b`, `a, b and c`.
fn join_words(items: &[String]) -> String {
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A requirements-file line without its comment, trimmed.
fn requirement_line(line: &str) -> &str {
    let line = line.trim();
    if line.starts_with('#') {
        return "";
    }
    let end = [" #", "\t#"]
        .iter()
        .filter_map(|marker| line.find(marker))
        .min()
        .unwrap_or(line.len());
    line[..end].trim_end()
}

/// The requirement lines of a requirements file (options other than `-e` are not packages).
fn requirement_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(requirement_line).filter(|line| {
        !line.is_empty()
            && (!line.starts_with('-') || line.starts_with("-e") || line.starts_with("--editable"))
    })
}

fn count_requirements(text: &str) -> usize {
    requirement_lines(text).count()
}

/// `fastapi==0.165.0, uvicorn[standard]==0.54.0`, for progress lines.
fn requirement_names(text: &str) -> String {
    requirement_lines(text).collect::<Vec<_>>().join(", ")
}

/// The base requirements without version pins, for installing next to a project's own pins:
/// `uvicorn[standard]==0.54.0; python_version >= "3.8"` becomes
/// `uvicorn[standard]; python_version >= "3.8"`. Options and direct references (`name @ url`)
/// stay as they are; comments go.
fn unpinned(base: &str) -> String {
    let mut out = String::new();
    for line in base
        .lines()
        .map(requirement_line)
        .filter(|line| !line.is_empty())
    {
        out.push_str(&unpin(line));
        out.push('\n');
    }
    out
}

fn unpin(line: &str) -> String {
    if line.starts_with('-') {
        return line.to_string();
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(name_end);
    let rest_trimmed = rest.trim_start();
    let (extras, rest) = match rest_trimmed.strip_prefix('[').and_then(|r| r.find(']')) {
        Some(close) => rest_trimmed.split_at(close + 2),
        None => ("", rest_trimmed),
    };
    if rest.trim_start().starts_with('@') {
        return line.to_string();
    }
    match rest.split_once(';') {
        Some((_, marker)) => format!("{name}{extras}; {}", marker.trim()),
        None => format!("{name}{extras}"),
    }
}

/// Whether a requirements file refers to other files (`-r`, `-c`, editable or path installs),
/// whose contents the key cannot see.
fn refers_to_local_files(text: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "-r",
        "--requirement",
        "-c",
        "--constraint",
        "-e",
        "--editable",
        ".",
        "/",
        "~",
        "file:",
    ];
    text.lines()
        .map(requirement_line)
        .any(|line| PREFIXES.iter().any(|p| line.starts_with(p)) || line.contains("@ file:"))
}

/// The strings of `[project].dependencies` in a `pyproject.toml`, or `None` when the file has
/// no such static list (or one this small reader does not understand).
fn pep621_dependencies(toml: &str) -> Option<Vec<String>> {
    let mut table = "";
    let mut offset = 0;
    for line in toml.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            table = table_name(trimmed);
            continue;
        }
        if table != "project" {
            continue;
        }
        let Some(rest) = trimmed.strip_prefix("dependencies") else {
            continue;
        };
        if !rest.trim_start().starts_with('=') {
            continue;
        }
        // The first `=` of the line is the one after the key.
        let value_at = start + line.find('=')? + 1;
        return string_array(&toml[value_at..]);
    }
    None
}

/// `[tool.poetry.dependencies]  # x` → `tool.poetry.dependencies`; `[[...]]` → `""`.
fn table_name(header: &str) -> &str {
    if header.starts_with("[[") {
        return "";
    }
    let inner = header.trim_start_matches('[');
    inner.split(']').next().unwrap_or("").trim()
}

fn has_poetry_dependencies(toml: &str) -> bool {
    toml.lines()
        .map(str::trim)
        .any(|line| line.starts_with('[') && table_name(line) == "tool.poetry.dependencies")
}

/// Parses a TOML array of strings at the start of `text` (after whitespace): basic and literal
/// strings, commas, comments and newlines. Anything else gives `None`.
fn string_array(text: &str) -> Option<Vec<String>> {
    let mut chars = text.trim_start().chars();
    if chars.next() != Some('[') {
        return None;
    }
    let mut items = Vec::new();
    loop {
        match chars.next()? {
            ']' => return Some(items),
            c if c.is_whitespace() || c == ',' => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '\'' => {
                let mut item = String::new();
                loop {
                    match chars.next()? {
                        '\'' => break,
                        '\n' => return None,
                        c => item.push(c),
                    }
                }
                items.push(item);
            }
            '"' => {
                let mut item = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\n' => return None,
                        '\\' => match chars.next()? {
                            'n' => item.push('\n'),
                            't' => item.push('\t'),
                            c @ ('"' | '\\') => item.push(c),
                            _ => return None,
                        },
                        c => item.push(c),
                    }
                }
                items.push(item);
            }
            _ => return None,
        }
    }
}

/// Whether `dir` is a finished env: it has the ready marker and a working `bin/python` link.
async fn is_ready(dir: &Path) -> bool {
    tokio::fs::metadata(dir.join(READY_MARKER)).await.is_ok()
        && tokio::fs::metadata(dir.join("bin").join("python"))
            .await
            .is_ok()
}

async fn write_file(path: &Path, contents: &[u8]) -> Result<(), ProvisionError> {
    tokio::fs::write(path, contents)
        .await
        .map_err(|source| ProvisionError::Io {
            path: path.to_path_buf(),
            source,
        })
}

async fn remove_dir(path: &Path) -> Result<(), ProvisionError> {
    match tokio::fs::remove_dir_all(path).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ProvisionError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Rewrites `from` to `to` in the regular files of `bin` that mention it (script shebangs,
/// activate scripts), so a pip-built env works after its rename.
async fn repoint_scripts(bin: &Path, from: &Path, to: &Path) -> Result<(), ProvisionError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProvisionError::Io { path, source }
    };
    let from = from.as_os_str().as_encoded_bytes();
    let to = to.as_os_str().as_encoded_bytes();
    let mut entries = tokio::fs::read_dir(bin).await.map_err(io(bin))?;
    while let Some(entry) = entries.next_entry().await.map_err(io(bin))? {
        let path = entry.path();
        if !entry.file_type().await.map_err(io(&path))?.is_file() {
            continue;
        }
        let contents = tokio::fs::read(&path).await.map_err(io(&path))?;
        if let Some(rewritten) = replace_bytes(&contents, from, to) {
            tokio::fs::write(&path, rewritten)
                .await
                .map_err(io(&path))?;
        }
    }
    Ok(())
}

/// `haystack` with every `from` replaced by `to`, or `None` if it has none.
fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    if from.is_empty() || !haystack.windows(from.len()).any(|window| window == from) {
        return None;
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    Some(out)
}

/// Sends each line of `stream` (lossily decoded, without its line ending) down `lines`.
async fn forward_lines(stream: impl AsyncRead + Unpin, lines: mpsc::UnboundedSender<String>) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                let line = line.trim_end_matches(['\n', '\r']);
                if !line.trim().is_empty() && lines.send(line.to_string()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Asks `python` for its version and real executable (a pyenv shim resolves to the
/// interpreter behind it, which later steps run directly).
async fn probe_python(python: &str) -> Result<BasePython, ProvisionError> {
    let failed = |reason: String| ProvisionError::Python {
        python: python.to_string(),
        reason,
    };
    let mut command = Command::new(python);
    command
        .args([
            "-c",
            "import sys; print(sys.version.split()[0]); print(sys.executable)",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PROBE_TIMEOUT, command.output())
        .await
        .map_err(|_| failed(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())))?
        .map_err(|error| failed(error.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!("{}: {}", output.status, stderr.trim())));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines().map(str::trim);
    let version = lines.next().unwrap_or_default().to_string();
    if version.is_empty() {
        return Err(failed("it printed no version".into()));
    }
    let executable = match lines.next() {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(python),
    };
    tracing::info!(%version, executable = %executable.display(), "base python");
    Ok(BasePython {
        version,
        executable,
    })
}

/// An environment variable's value, unless unset or empty.
fn non_empty_env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

/// `uv` from `PREVIEWD_UV` (must work), else from `PATH` (falls back to pip if it does not run),
/// else pip.
fn find_installer() -> Result<Installer, ProvisionError> {
    if let Some(path) = non_empty_env("PREVIEWD_UV") {
        let program = PathBuf::from(path);
        return match uv_version(&program) {
            Ok(version) => Ok(Installer::Uv { program, version }),
            Err(reason) => Err(ProvisionError::Uv {
                path: program,
                reason,
            }),
        };
    }
    let Some(program) = find_on_path("uv") else {
        return Ok(Installer::Pip);
    };
    match uv_version(&program) {
        Ok(version) => Ok(Installer::Uv { program, version }),
        Err(reason) => {
            tracing::warn!(uv = %program.display(), %reason, "uv on PATH does not run; using venv+pip");
            Ok(Installer::Pip)
        }
    }
}

/// `uv 0.13.9` from `uv --version` (`uv 0.13.9 (x86_64-unknown-linux-gnu)`).
fn uv_version(program: &Path) -> Result<String, String> {
    let output = std::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| error.to_string())?;
    if !output.status.success() {
        return Err(format!("it exited with {}", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let version: Vec<&str> = stdout.split_whitespace().take(2).collect();
    if version.is_empty() {
        return Err("it printed no version".into());
    }
    Ok(version.join(" "))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "# launcher needs\nfastapi==0.165.0\nuvicorn[standard]==0.54.0\n";

    fn manifest(name: &str, text: &str) -> Manifest {
        Manifest {
            path: PathBuf::from("/project").join(name),
            name: name.into(),
            text: text.into(),
        }
    }

    fn python() -> BasePython {
        BasePython {
            version: "3.11.7".into(),
            executable: "/usr/bin/python3".into(),
        }
    }

    fn key(base: &str, manifests: &[Manifest], project_dir: &str) -> String {
        let plan = InstallPlan::new(base, manifests, true);
        env_key("uv", &python(), &plan, manifests, Path::new(project_dir))
    }

    /// Same inputs give the same key; anything that changes what is installed changes it.
    #[test]
    fn key_follows_what_is_installed() {
        let requests = [manifest("requirements.txt", "requests==2.32.3\n")];
        let base_key = key(BASE, &[], "/a");
        assert_eq!(
            base_key,
            key(BASE, &[], "/b"),
            "the base env is shared by all projects"
        );
        assert_eq!(base_key.len(), 32);
        assert!(base_key.chars().all(|c| c.is_ascii_hexdigit()));

        let project_key = key(BASE, &requests, "/a");
        assert_eq!(
            project_key,
            key(BASE, &requests, "/b"),
            "same manifests share an env"
        );
        assert_ne!(project_key, base_key);
        let other = [manifest("requirements.txt", "requests==2.32.4\n")];
        assert_ne!(project_key, key(BASE, &other, "/a"));
        let renamed = [manifest("requirements-dev.txt", "requests==2.32.3\n")];
        assert_ne!(project_key, key(BASE, &renamed, "/a"));
        assert_ne!(
            base_key,
            key("fastapi==0.166.0\nuvicorn[standard]==0.54.0\n", &[], "/a")
        );

        let plan = InstallPlan::new(BASE, &[], true);
        let newer = BasePython {
            version: "3.12.1".into(),
            ..python()
        };
        assert_ne!(base_key, env_key("uv", &newer, &plan, &[], Path::new("/a")));
        assert_ne!(
            base_key,
            env_key("pip", &python(), &plan, &[], Path::new("/a"))
        );
    }

    /// A manifest pointing at other files ties its env to the project directory.
    #[test]
    fn local_references_key_on_the_project_dir() {
        for text in [
            "-e .\n",
            "-r base.txt\n",
            "./libs/pkg\n",
            "pkg @ file:///x\n",
        ] {
            let manifests = [manifest("requirements.txt", text)];
            assert_ne!(
                key(BASE, &manifests, "/a"),
                key(BASE, &manifests, "/b"),
                "{text}"
            );
        }
        let plain = [manifest(
            "requirements.txt",
            "requests  # -e . in a comment\n",
        )];
        assert_eq!(key(BASE, &plain, "/a"), key(BASE, &plain, "/b"));
    }

    /// Pins go, extras and markers stay, options and direct references are untouched.
    #[test]
    fn base_pins_are_stripped() {
        assert_eq!(unpinned(BASE), "fastapi\nuvicorn[standard]\n");
        assert_eq!(
            unpinned("httpx >= 0.27, < 1  # client\nuvloop==0.21; sys_platform != \"win32\"\n"),
            "httpx\nuvloop; sys_platform != \"win32\"\n"
        );
        assert_eq!(
            unpinned("uvicorn [standard] ~= 0.54\n"),
            "uvicorn[standard]\n"
        );
        assert_eq!(
            unpinned("--index-url https://example.org/simple\npkg @ https://example.org/pkg.whl\n"),
            "--index-url https://example.org/simple\npkg @ https://example.org/pkg.whl\n"
        );
    }

    /// Alone the base keeps its pins; next to a manifest it is unpinned and both are installed.
    #[test]
    fn plans() {
        let alone = InstallPlan::new(BASE, &[], true);
        assert_eq!(alone.base, BASE);
        assert!(alone.sources.is_empty());
        assert_eq!(
            alone.summary,
            "the launcher's packages (fastapi==0.165.0, uvicorn[standard]==0.54.0)"
        );

        let requirements = manifest(
            "requirements.txt",
            "# deps\nfastapi==0.110.0\n-e .\n--pre\n",
        );
        let project = InstallPlan::new(BASE, std::slice::from_ref(&requirements), true);
        assert_eq!(project.base, "fastapi\nuvicorn[standard]\n");
        assert_eq!(project.sources, [Source::File(requirements.path.clone())]);
        assert_eq!(
            project.summary,
            "requirements.txt (2 packages) and the launcher's packages (fastapi, uvicorn[standard])"
        );
        assert!(project.local_references);
        assert_eq!(project.manifest_names, ["requirements.txt"]);
    }

    /// uv reads a pyproject.toml itself; pip gets its dependency strings; Poetry is skipped.
    #[test]
    fn pyproject_plans() {
        let pep621 = manifest(
            "pyproject.toml",
            "[project]\nname = \"app\"\ndependencies = [\"requests==2.32.3\"]\n",
        );
        let uv = InstallPlan::new(BASE, std::slice::from_ref(&pep621), true);
        assert_eq!(uv.sources, [Source::File(pep621.path.clone())]);
        let pip = InstallPlan::new(BASE, std::slice::from_ref(&pep621), false);
        assert_eq!(
            pip.sources,
            [Source::Requirements(vec!["requests==2.32.3".into()])]
        );
        assert!(pip.notes.is_empty());

        let poetry = manifest(
            "pyproject.toml",
            "[tool.poetry.dependencies]\npython = \"^3.11\"\nrequests = \"^2.32\"\n",
        );
        let plan = InstallPlan::new(BASE, &[poetry], true);
        assert!(plan.sources.is_empty());
        assert_eq!(
            plan.base, BASE,
            "nothing else installed: the tested pins stay"
        );
        assert_eq!(plan.notes.len(), 1);
        assert!(plan.notes[0].contains("Poetry"), "{}", plan.notes[0]);
    }

    /// The small TOML reader finds `[project].dependencies` and nothing else.
    #[test]
    fn pep621_lists() {
        let toml = r#"
[build-system]
requires = ["hatchling"]
dependencies = ["not-this"]

[project]  # the app
name = "app"
dependencies = [
    "fastapi>=0.110",  # web
    'sqlalchemy[asyncio]==2.0.36',
    "pydantic-settings; python_version >= \"3.9\"",
]

[project.optional-dependencies]
dev = ["pytest"]
"#;
        assert_eq!(
            pep621_dependencies(toml),
            Some(vec![
                "fastapi>=0.110".to_string(),
                "sqlalchemy[asyncio]==2.0.36".to_string(),
                "pydantic-settings; python_version >= \"3.9\"".to_string(),
            ])
        );
        assert_eq!(
            pep621_dependencies("[project]\ndependencies = []\n"),
            Some(vec![])
        );
        assert_eq!(
            pep621_dependencies("[project]\ndynamic = [\"dependencies\"]\n"),
            None
        );
        assert_eq!(
            pep621_dependencies("[project]\ndependencies = \"oops\"\n"),
            None
        );
        assert_eq!(
            pep621_dependencies("[project]\ndependencies = [\"unclosed\"\n"),
            None
        );
        assert!(has_poetry_dependencies("[tool.poetry.dependencies] # x\n"));
        assert!(!has_poetry_dependencies(toml));
    }

    #[test]
    fn small_helpers() {
        assert_eq!(
            count_requirements("a\n\n# b\n -r x.txt\n--pre\n-e .\nc  # d\n"),
            3
        );
        assert_eq!(join_words(&["a".into()]), "a");
        assert_eq!(
            join_words(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
        assert_eq!(short("3f2a1b0c9d"), "3f2a1b0c…");
        assert_eq!(
            replace_bytes(b"#!/c/k.partial-1/bin/python\n", b"/c/k.partial-1", b"/c/k"),
            Some(b"#!/c/k/bin/python\n".to_vec())
        );
        assert_eq!(replace_bytes(b"nothing", b"/c/k.partial-1", b"/c/k"), None);
    }
}
