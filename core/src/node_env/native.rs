//! Native addons for cached Node installs, compiled host side from the registry, never from the
//! project.
//!
//! Node's SQLite drivers are native addons: `better-sqlite3` and `sqlite3` build their binding
//! (`build/Release/*.node`) in an install script, which `--ignore-scripts` skips, so an app on
//! them (directly, or through knex, Sequelize or TypeORM on SQLite, previewd's default database)
//! dies at start with "Could not locate the bindings file". The project's install scripts cannot
//! run: its lockfile may point any package name, helpers such as `prebuild-install` included, at
//! any tarball. So for each package of a short allowlist ([`NATIVE_PACKAGES`]) found in the
//! install, previewd reads its version from `node_modules/<name>/package.json`, refuses anything
//! but a plain semver version, and provides a `build/` folder made from the registry's copy of
//! that version:
//!
//! - made once per (name, version, Node major, arch) into
//!   `<cache>/native/<name>@<version>-node<major>-<arch>/build` (its `Release/*.node` files
//!   only) and shared by every project: in a `.partial-` folder (renamed into place when
//!   complete), `npm install --ignore-scripts --no-save <name>@<version>` into a fresh package,
//!   then npm's own bundled node-gyp (found next to the npm executable, never in
//!   `node_modules/.bin`) runs `rebuild --release` in `node_modules/<name>` with the `node` the
//!   apps run on. node-gyp runs as a script of that fresh package (`npm run`), because npm is
//!   what hands the machine's npm configuration (`nodedir`, `python`, proxies ...) to node-gyp
//!   as `npm_config_*` variables: run bare it would try to download Node's headers;
//! - copied (not linked) into the install's `node_modules/<name>/build`: the sandbox sees the
//!   install, not `<cache>/native`.
//!
//! A failed compile does not fail the install (the app may never load the package): it is
//! reported with the compiler's last lines and the install goes on without it. A tokio mutex per
//! native key makes concurrent installs wait for one compile.
//!
//! `bcrypt` is not on the list: bcrypt 6 ships prebuilt N-API binaries in its tarball (loaded by
//! `node-gyp-build` without an install script), and bcrypt 5 builds through node-pre-gyp into
//! `lib/binding/`, not with a plain `node-gyp rebuild` into `build/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::process::Command;

use super::NodeInfo;
use super::{blocking_io, copy_tree, io_error, remove_dir, write_file, NodeEnvError, NodeEnvs};
use crate::cache_build::{PartialDir, READY_MARKER};

/// The native addons previewd compiles, each built by `node-gyp rebuild` into `build/`.
pub(super) const NATIVE_PACKAGES: &[&str] = &["better-sqlite3", "sqlite3"];
/// The folder of `<cache>` holding the compiled addons.
const NATIVE_DIR: &str = "native";
/// The folder node-gyp builds into, in the package's folder.
const BUILD_DIR: &str = "build";
/// The folder of a `--release` build holding the addons, in [`BUILD_DIR`].
const RELEASE_DIR: &str = "Release";
/// The script of the scratch package that runs node-gyp (see the module doc).
const COMPILE_SCRIPT: &str = "previewd-compile";
/// The `node` node-gyp runs on (so compiles for), given to the compile script.
const NODE_VARIABLE: &str = "NATIVE_NODE";
/// The longest version string taken (it names a cache folder).
const MAX_VERSION_LENGTH: usize = 128;
/// npm's bundled node-gyp, from npm's package folder.
const BUNDLED_NODE_GYP: &str = "node_modules/node-gyp/bin/node-gyp.js";

/// An allowlisted addon found in an install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NativePackage {
    pub(super) name: &'static str,
    /// The version its `package.json` claims, unchecked (see [`plain_version`]).
    pub(super) version: String,
}

impl NativePackage {
    /// The folder name of its compiled build in `<cache>/native`.
    fn key(&self, node_major: &str) -> String {
        format!(
            "{}@{}-node{node_major}-{}",
            self.name,
            self.version,
            std::env::consts::ARCH
        )
    }
}

/// The allowlisted packages installed in `node_modules`, with the version each `package.json`
/// claims; packages without a readable version are left out, and so are links (a `file:`
/// dependency), which lead out of the install.
pub(super) fn installed(node_modules: &Path) -> Vec<NativePackage> {
    NATIVE_PACKAGES
        .iter()
        .filter_map(|name| {
            let folder = node_modules.join(name);
            if !std::fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
                return None;
            }
            let text = std::fs::read_to_string(folder.join("package.json")).ok()?;
            let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
            let version = manifest.get("version")?.as_str()?.to_string();
            Some(NativePackage { name, version })
        })
        .collect()
}

/// Whether `version` is a plain semver version (`1.2.3`, `1.2.3-beta.1+build.5`): what may be
/// asked of the registry and named in a cache folder; ranges, paths, URLs and tags are not.
pub(super) fn plain_version(version: &str) -> bool {
    version.len() <= MAX_VERSION_LENGTH && semver::Version::parse(version).is_ok()
}

impl NodeEnvs {
    /// Provides the compiled `build/` of every allowlisted addon in the `build` install folder,
    /// compiling what the cache lacks; failures are reported to `progress`, never returned,
    /// except for the install's own files.
    pub(super) async fn provide_native(
        &self,
        build: &Path,
        node: &NodeInfo,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), NodeEnvError> {
        let node_modules = build.join("node_modules");
        let found = {
            let node_modules = node_modules.clone();
            tokio::task::spawn_blocking(move || installed(&node_modules))
                .await
                .unwrap_or_default()
        };
        for package in found {
            let name = package.name;
            if !plain_version(&package.version) {
                progress(format!(
                    "native: not compiling {name}: its version {:?} is not a plain semver version",
                    package.version
                ));
                continue;
            }
            let Some(compiled) = self.compiled(&package, node, progress).await else {
                continue;
            };
            let target = node_modules.join(name).join(BUILD_DIR);
            remove_dir(&target).await?;
            let to = target.clone();
            blocking_io(&target, move || copy_tree(&compiled, &to)).await?;
        }
        Ok(())
    }

    /// The cached `build/` folder of `package` for `node`, compiled first if missing; `None`
    /// (said through `progress`) when it could not be made.
    async fn compiled(
        &self,
        package: &NativePackage,
        node: &NodeInfo,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Option<PathBuf> {
        let (name, version, major) = (package.name, &package.version, &node.major);
        let key = package.key(major);
        let dir = self.cache_dir.join(NATIVE_DIR).join(&key);
        let waiting =
            || format!("native: waiting for the compile of {name} {version} already under way");
        let lock_key = format!("{NATIVE_DIR}/{key}");
        let _compile = self.locks.hold(&lock_key, waiting, progress).await;
        if dir.join(READY_MARKER).is_file() {
            progress(format!("native: {name} {version} from the cache"));
            return Some(dir.join(BUILD_DIR));
        }
        progress(format!(
            "native: compiling {name} {version} for Node {major} (once per version)…"
        ));
        let started = Instant::now();
        match self.compile(package, node, &dir, progress).await {
            Ok(()) => {
                progress(format!(
                    "native: {name} ready (compiled in {:.1} s)",
                    started.elapsed().as_secs_f64()
                ));
                Some(dir.join(BUILD_DIR))
            }
            Err(error) => {
                progress(format!(
                    "native: could not compile {name} {version}, the install goes on without it \
                     (the app fails if it loads {name}): {error}"
                ));
                None
            }
        }
    }

    /// Makes `dir` (through a `.partial-` folder): the registry's `package` installed without
    /// scripts into a fresh package, compiled by npm's node-gyp for `node`, its `build/` kept.
    async fn compile(
        &self,
        package: &NativePackage,
        node: &NodeInfo,
        dir: &Path,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), NodeEnvError> {
        let node_gyp = self.bundled_node_gyp().await?;
        remove_dir(dir).await?;
        let parent = dir.parent().unwrap_or(&self.cache_dir);
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io_error(parent))?;
        let partial = PartialDir::new(dir);
        let scratch = partial.path().join("scratch");
        tokio::fs::create_dir_all(&scratch)
            .await
            .map_err(io_error(&scratch))?;
        write_file(
            &scratch.join("package.json"),
            &scratch_manifest(package.name),
        )
        .await?;

        let spec = format!("{}@{}", package.name, package.version);
        let mut install = Command::new(&self.npm);
        install.args([
            "install",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--no-save",
            spec.as_str(),
        ]);
        self.run_npm(install, &scratch, progress).await?;

        let mut compile = Command::new(&self.npm);
        compile
            .args(["run", COMPILE_SCRIPT])
            .env("npm_config_node_gyp", &node_gyp)
            .env(NODE_VARIABLE, &node.executable);
        self.run_npm(compile, &scratch, progress).await?;

        let built = scratch
            .join("node_modules")
            .join(package.name)
            .join(BUILD_DIR);
        let kept = partial.path().join(BUILD_DIR);
        let from = built.clone();
        blocking_io(&built, move || keep_binaries(&from, &kept)).await?;
        remove_dir(&scratch).await?;
        write_file(&partial.path().join(READY_MARKER), "").await?;
        super::finish(partial).await
    }

    /// npm's bundled node-gyp: in the package folder of the npm executable (its real path), else
    /// under `npm prefix -g`.
    async fn bundled_node_gyp(&self) -> Result<PathBuf, NodeEnvError> {
        let executable = match self.npm.contains('/') {
            true => Some(PathBuf::from(&self.npm)),
            false => on_path(&self.npm),
        };
        if let Some(found) = executable
            .and_then(|e| std::fs::canonicalize(e).ok())
            .and_then(|real| node_gyp_near(&real))
        {
            return Ok(found);
        }
        let output = Command::new(&self.npm)
            .args(["prefix", "-g"])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|source| NodeEnvError::Spawn {
                program: self.npm.clone(),
                source,
            })?;
        let prefix = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let candidate = prefix.join("lib/node_modules/npm").join(BUNDLED_NODE_GYP);
        match candidate.is_file() {
            true => Ok(candidate),
            false => Err(NodeEnvError::Io {
                path: candidate,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "npm's bundled node-gyp is not next to npm",
                ),
            }),
        }
    }
}

/// The `package.json` of the scratch package: nothing but the script running node-gyp (with
/// the `node` and node-gyp previewd names) in `node_modules/<name>`.
fn scratch_manifest(name: &str) -> String {
    let script = format!(
        "\"${NODE_VARIABLE}\" \"$npm_config_node_gyp\" rebuild --release --directory node_modules/{name}"
    );
    serde_json::json!({
        "name": "previewd-native",
        "private": true,
        "scripts": { COMPILE_SCRIPT: script },
    })
    .to_string()
}

/// Copies the addons node-gyp built (`build/Release/*.node`, where `bindings` looks) from
/// `built` to `kept`, leaving the object files (most of the 17 MB of a better-sqlite3 build)
/// behind; an error when there is none.
fn keep_binaries(built: &Path, kept: &Path) -> std::io::Result<()> {
    let release = built.join(RELEASE_DIR);
    let mut copied = 0;
    for entry in std::fs::read_dir(&release)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_file() && path.extension().is_some_and(|e| e == "node") {
            std::fs::create_dir_all(kept.join(RELEASE_DIR))?;
            std::fs::copy(&path, kept.join(RELEASE_DIR).join(entry.file_name()))?;
            copied += 1;
        }
    }
    match copied {
        0 => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "node-gyp built no .node file in build/Release",
        )),
        _ => Ok(()),
    }
}

/// `program` found in a folder of `PATH`.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// node-gyp in the npm package holding the file `npm_real` (`…/npm/bin/npm-cli.js`): the first
/// folder above it with a `package.json`.
fn node_gyp_near(npm_real: &Path) -> Option<PathBuf> {
    let root = npm_real
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("package.json").is_file())?;
    Some(root.join(BUNDLED_NODE_GYP)).filter(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::super::tests::write_files;
    use super::*;

    /// Only allowlisted packages with a readable version are found, with what they claim.
    #[test]
    fn finds_allowlisted_packages() {
        let dir = tempfile::tempdir().unwrap();
        write_files(
            dir.path(),
            &[
                (
                    "better-sqlite3/package.json",
                    r#"{"name": "better-sqlite3", "version": "11.10.0"}"#,
                ),
                ("sqlite3/package.json", r#"{"name": "sqlite3"}"#),
                ("bcrypt/package.json", r#"{"version": "5.1.1"}"#),
                ("express/package.json", r#"{"version": "4.21.2"}"#),
            ],
        );
        assert_eq!(
            installed(dir.path()),
            [NativePackage {
                name: "better-sqlite3",
                version: "11.10.0".into()
            }]
        );
        write_files(
            dir.path(),
            &[("sqlite3/package.json", r#"{"version": "../../x"}"#)],
        );
        let found = installed(dir.path());
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[1].version, "../../x",
            "read as claimed, checked later"
        );
        assert!(installed(&dir.path().join("missing")).is_empty());

        // A linked package (`file:` dependency) leads out of the install: left alone.
        let elsewhere = tempfile::tempdir().unwrap();
        write_files(
            elsewhere.path(),
            &[("package.json", r#"{"version": "11.10.0"}"#)],
        );
        std::fs::remove_dir_all(dir.path().join("better-sqlite3")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("better-sqlite3")).unwrap();
        let found = installed(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "sqlite3");
    }

    /// Plain semver versions pass; paths, specs, URLs, ranges and shell text do not.
    #[test]
    fn versions_must_be_plain_semver() {
        for good in [
            "11.10.0",
            "5.1.7",
            "0.0.1",
            "1.2.3-beta.1",
            "1.2.3-rc-1+build.5",
        ] {
            assert!(plain_version(good), "{good}");
        }
        for bad in [
            "",
            "../x",
            "1.0.0/../../x",
            "file:../x",
            "file:1.0.0",
            "https://evil.example/x.tgz",
            "git+ssh://git@github.com/a/b",
            "1.0.0 && rm -rf /",
            "1.0.0&&rm",
            "^1.0.0",
            "1.0",
            "1.0.0.0",
            "latest",
            "1.0.0-",
            "1.0.0-a..b",
            "1.0.0+",
            "1.0.0\n",
            "v1.0.0",
        ] {
            assert!(!plain_version(bad), "{bad:?}");
        }
    }

    /// The cache key names the package, version, Node major and arch.
    #[test]
    fn native_cache_key() {
        let package = NativePackage {
            name: "better-sqlite3",
            version: "11.10.0".into(),
        };
        let key = package.key("20");
        assert_eq!(
            key,
            format!("better-sqlite3@11.10.0-node20-{}", std::env::consts::ARCH)
        );
        assert_ne!(key, package.key("22"));
    }

    /// The scratch package runs node-gyp with the given node on the named package only.
    #[test]
    fn scratch_manifest_runs_node_gyp() {
        let manifest: serde_json::Value =
            serde_json::from_str(&scratch_manifest("sqlite3")).unwrap();
        assert_eq!(
            manifest["scripts"][COMPILE_SCRIPT],
            "\"$NATIVE_NODE\" \"$npm_config_node_gyp\" rebuild --release --directory node_modules/sqlite3"
        );
        assert!(manifest.get("dependencies").is_none());
    }

    /// A stand-in npm package in `dir` (`npm/bin/npm`, with npm's bundled node-gyp beside it):
    /// `install` puts `better-sqlite3` 11.10.0 in the scratch `node_modules` and says so; `run`
    /// prints a compiler error and fails when `fails`, else builds `better_sqlite3.node`
    /// (holding the node and node-gyp it was given) and an object file. Returns its path.
    fn fake_npm(dir: &Path, fails: bool) -> PathBuf {
        let compile = match fails {
            true => "echo 'gyp ERR! build error: sqlite3.c:1: no compiler'; exit 1",
            false => {
                "mkdir -p node_modules/better-sqlite3/build/Release/obj.target && \
                 echo \"$NATIVE_NODE $npm_config_node_gyp\" > node_modules/better-sqlite3/build/Release/better_sqlite3.node && \
                 echo obj > node_modules/better-sqlite3/build/Release/obj.target/sqlite3.o"
            }
        };
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in\n\
             install) mkdir -p node_modules/better-sqlite3 && \
             echo '{{\"version\": \"11.10.0\"}}' > node_modules/better-sqlite3/package.json && \
             echo \"added 1 package ($*)\" ;;\n\
             run) {compile} ;;\n\
             esac\n"
        );
        let npm = dir.join("npm/bin/npm");
        write_files(
            dir,
            &[
                ("npm/package.json", "{}"),
                ("npm/bin/npm", &script),
                ("npm/node_modules/node-gyp/bin/node-gyp.js", ""),
            ],
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&npm, std::fs::Permissions::from_mode(0o755)).unwrap();
        npm
    }

    /// Node envs in `<dir>/cache` on the stand-in npm, an install folder holding
    /// better-sqlite3 11.10.0, and `provide_native` run on it; its progress lines.
    async fn provide(dir: &Path, envs: &NodeEnvs) -> Vec<String> {
        let build = dir.join("install");
        write_files(
            &build,
            &[(
                "node_modules/better-sqlite3/package.json",
                r#"{"name": "better-sqlite3", "version": "11.10.0"}"#,
            )],
        );
        let node = NodeInfo {
            executable: PathBuf::from("/usr/bin/node"),
            major: "20".into(),
        };
        let lines = std::sync::Mutex::new(Vec::new());
        let progress = |line: String| lines.lock().unwrap().push(line);
        envs.provide_native(&build, &node, &progress).await.unwrap();
        lines.into_inner().unwrap()
    }

    fn envs_on(dir: &Path, fails: bool) -> NodeEnvs {
        let mut envs = NodeEnvs::new(dir.join("cache")).unwrap();
        envs.npm = fake_npm(dir, fails).display().to_string();
        envs
    }

    /// The registry's version is installed without scripts and compiled once with npm's
    /// node-gyp and the apps' node; its `.node` files (not the object files) are cached and
    /// copied into the install, and the next install takes them from the cache.
    #[tokio::test]
    async fn compiled_once_and_copied() {
        let dir = tempfile::tempdir().unwrap();
        let envs = envs_on(dir.path(), false);
        let lines = provide(dir.path(), &envs).await;
        let has = |lines: &[String], prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
        assert!(
            has(
                &lines,
                "native: compiling better-sqlite3 11.10.0 for Node 20 (once per version)…"
            ),
            "{lines:#?}"
        );
        assert!(
            has(
                &lines,
                "added 1 package (install --ignore-scripts --no-audit --no-fund --no-save better-sqlite3@11.10.0)"
            ),
            "{lines:#?}"
        );
        assert!(
            has(&lines, "native: better-sqlite3 ready (compiled in "),
            "{lines:#?}"
        );
        let binary = dir
            .path()
            .join("install/node_modules/better-sqlite3/build/Release/better_sqlite3.node");
        let given = std::fs::read_to_string(&binary).unwrap();
        let gyp = dir.path().join("npm/node_modules/node-gyp/bin/node-gyp.js");
        let gyp = std::fs::canonicalize(gyp).unwrap();
        assert_eq!(given.trim(), format!("/usr/bin/node {}", gyp.display()));
        let cached = envs.cache_dir.join(NATIVE_DIR);
        let entries: Vec<String> = std::fs::read_dir(&cached)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let key = format!("better-sqlite3@11.10.0-node20-{}", std::env::consts::ARCH);
        assert_eq!(entries, std::slice::from_ref(&key));
        assert!(!cached.join(&key).join("build/Release/obj.target").exists());
        assert!(!cached.join(&key).join("scratch").exists());

        std::fs::remove_dir_all(dir.path().join("install")).unwrap();
        let lines = provide(dir.path(), &envs).await;
        assert!(
            has(&lines, "native: better-sqlite3 11.10.0 from the cache"),
            "{lines:#?}"
        );
        assert!(!has(&lines, "native: compiling"), "{lines:#?}");
        assert!(binary.is_file());
    }

    /// A failed compile does not fail the install: it is said with the compiler's last lines,
    /// nothing is copied, and no `.partial-` folder is left in the cache.
    #[tokio::test]
    async fn failed_compile_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let envs = envs_on(dir.path(), true);
        let lines = provide(dir.path(), &envs).await;
        let failure = lines
            .iter()
            .find(|l| l.starts_with("native: could not compile better-sqlite3 11.10.0"))
            .unwrap_or_else(|| panic!("{lines:#?}"));
        assert!(failure.contains("no compiler"), "{failure}");
        assert!(!dir
            .path()
            .join("install/node_modules/better-sqlite3/build")
            .exists());
        let left: Vec<_> = std::fs::read_dir(envs.cache_dir.join(NATIVE_DIR))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// A version that is not plain semver is never asked of the registry.
    #[tokio::test]
    async fn odd_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let envs = envs_on(dir.path(), false);
        write_files(
            &dir.path().join("install"),
            &[(
                "node_modules/sqlite3/package.json",
                r#"{"version": "file:../evil"}"#,
            )],
        );
        let lines = provide(dir.path(), &envs).await;
        assert!(
            lines.iter().any(|l| l
                == "native: not compiling sqlite3: its version \"file:../evil\" is not a plain semver version"),
            "{lines:#?}"
        );
        assert!(!dir
            .path()
            .join("install/node_modules/sqlite3/build")
            .exists());
    }

    /// node-gyp is found in the package folder of npm's real path.
    #[test]
    fn node_gyp_next_to_npm() {
        let dir = tempfile::tempdir().unwrap();
        write_files(
            dir.path(),
            &[
                ("lib/node_modules/npm/package.json", "{}"),
                ("lib/node_modules/npm/bin/npm-cli.js", ""),
                (
                    "lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
                    "",
                ),
            ],
        );
        let npm = dir.path().join("lib/node_modules/npm/bin/npm-cli.js");
        assert_eq!(
            node_gyp_near(&npm).unwrap(),
            dir.path()
                .join("lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js")
        );
        std::fs::remove_file(
            dir.path()
                .join("lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
        )
        .unwrap();
        assert!(node_gyp_near(&npm).is_none());
    }
}
