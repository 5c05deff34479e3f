//! Starting a launcher process. A preview's cold start and a warm process both go through
//! [`spawn`], so both get the same environment, limits and sandbox, and a warm process handed a
//! project is in every way the process a cold start would have made.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use previewd_plugin_api::Runtime;
use tokio::process::{Child, Command};

use super::isolation::{Isolation, PreviewFolders};
use super::limits::cgroup::PreviewCgroup;
use super::limits::Limits;
use super::process_tree::MARKER_VAR;
use crate::runtimes::Runtimes;

/// Variables of previewd's own environment an app inherits; nothing else (no secrets) leaks.
const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER",
];

/// Whether [`Spawner::base_env`] may set `name`: a project's env file does not override it.
pub fn is_base_variable(name: &str) -> bool {
    INHERITED_ENV.contains(&name)
        || matches!(
            name,
            "VIRTUAL_ENV" | "PYTHONUNBUFFERED" | "MALLOC_ARENA_MAX"
        )
        || name == MARKER_VAR
}

/// A runtime ready to run a launcher.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Provisioned {
    /// The interpreter the launcher runs with.
    pub interpreter: PathBuf,
    /// The environment it runs in (a virtualenv, a `node_modules`), if any.
    pub env_dir: Option<PathBuf>,
}

/// What the interpreter runs.
#[derive(Debug, Clone, Copy)]
pub enum Run<'a> {
    /// The runtime's launcher script, with these arguments.
    Launcher(&'a [String]),
    /// These arguments alone (a plugin's migration command).
    Interpreter(&'a [String]),
}

/// One launcher process to start.
pub struct LauncherSpec<'a> {
    pub runtime: Runtime,
    pub provisioned: &'a Provisioned,
    pub run: Run<'a>,
    pub cwd: &'a Path,
    /// The process's whole environment ([`base_env`] and what the launch adds).
    pub env: &'a BTreeMap<String, OsString>,
    pub cgroup: &'a PreviewCgroup,
    pub folders: PreviewFolders<'a>,
    /// Whether previewd writes to the launcher's stdin (a warm process waiting for a project).
    pub stdin: bool,
}

/// A started launcher.
pub struct Launched {
    pub child: Child,
    /// Its command line, as shown to users.
    pub command: String,
}

/// What starts every launcher.
pub struct Spawner<'a> {
    pub limits: &'a Limits,
    pub isolation: &'a Isolation,
    pub runtimes: &'a Runtimes,
}

impl Spawner<'_> {
    /// The environment every launcher gets: previewd's harmless variables, the scratch folder
    /// as `TMPDIR` (and, in a sandbox, where the user's home is read-only, as `HOME`), the
    /// runtime's hints for its limits, the virtualenv, and the process marker. Creates the
    /// scratch folders.
    pub fn base_env(
        &self,
        runtime: Runtime,
        provisioned: &Provisioned,
        scratch: &Path,
        marker: &str,
    ) -> Result<BTreeMap<String, OsString>, String> {
        let mut env: BTreeMap<String, OsString> = INHERITED_ENV
            .iter()
            .filter_map(|k| Some((k.to_string(), std::env::var_os(k)?)))
            .collect();
        // The app's temporary files go to the scratch folder, inside its disk limit.
        let tmp = scratch.join("tmp");
        create_dir(&tmp)?;
        env.insert("TMPDIR".into(), tmp.into());
        if self.isolation.is_sandboxed() {
            let home = scratch.join("home");
            create_dir(&home)?;
            env.insert("HOME".into(), home.into());
        }
        for (key, value) in self.limits.child_env(runtime) {
            env.insert(key.to_string(), value.into());
        }
        if let (Runtime::Python, Some(venv)) = (runtime, &provisioned.env_dir) {
            env.insert("VIRTUAL_ENV".into(), venv.into());
        }
        env.insert("PYTHONUNBUFFERED".into(), "1".into());
        env.insert(MARKER_VAR.into(), marker.into());
        Ok(env)
    }

    /// Starts the launcher of `spec.runtime` in a new session, in its cgroup (with its limits)
    /// and its sandbox, its output piped.
    pub fn spawn(&self, spec: LauncherSpec) -> Result<Launched, String> {
        let interpreter = &spec.provisioned.interpreter;
        let setup = self
            .limits
            .child_setup(spec.cgroup, spec.runtime)
            .map_err(|err| format!("preparing the preview's limits: {err}"))?;
        let sandbox = self
            .isolation
            .sandbox(&spec.folders)
            .map_err(|err| format!("preparing the preview's sandbox: {err}"))?;
        // Python's `-u`: unbuffered output. Node writes to pipes without buffering anyway.
        let flags: &[&str] = match spec.runtime {
            Runtime::Python => &["-u"],
            Runtime::Node => &[],
        };
        let (launcher, args) = match spec.run {
            Run::Launcher(args) => (
                Some(match spec.runtime {
                    Runtime::Python => self.runtimes.python_launcher(),
                    Runtime::Node => self.runtimes.node_launcher(),
                }),
                args,
            ),
            Run::Interpreter(args) => (None, args),
        };
        let mut command = Command::new(interpreter);
        command
            .args(flags)
            .args(&launcher)
            .args(args)
            .current_dir(spec.cwd)
            .env_clear()
            .envs(spec.env)
            .stdin(if spec.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: setsid is async-signal-safe, and so are the limits' set-up (open, write,
        // close and setrlimit) and the sandbox's (system calls only), both on data prepared
        // before the fork; the closure touches nothing else.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                setup.apply()?;
                match &sandbox {
                    Some(sandbox) => sandbox
                        .enter()
                        .map_err(|failure| std::io::Error::from_raw_os_error(failure.errno)),
                    None => Ok(()),
                }
            });
        }
        let shown = format!(
            "{} {}{}{}",
            interpreter.display(),
            flags.iter().map(|f| format!("{f} ")).collect::<String>(),
            launcher
                .map(|l| format!("{} ", l.display()))
                .unwrap_or_default(),
            args.join(" ")
        );
        let child = command
            .spawn()
            .map_err(|err| format!("starting `{shown}` failed: {err}"))?;
        Ok(Launched {
            child,
            command: shown,
        })
    }
}

fn create_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|err| format!("creating {}: {err}", dir.display()))
}
