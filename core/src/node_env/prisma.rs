//! Prisma client generation for cached Node installs, because `--ignore-scripts` skips it.
//!
//! Prisma's client is generated code, which `@prisma/client`'s own postinstall script would make
//! and `--ignore-scripts` skips. So when the package depends on `@prisma/client` or `prisma`
//! and has a schema (found as `previewd_plugin_javascript::prisma` finds it), its `.prisma`
//! files are copied into the build at the same relative paths and `node
//! node_modules/prisma/build/index.js generate --schema <schema>` runs there after npm: the
//! generated client (`node_modules/.prisma/client`) and the engines Prisma downloads become part
//! of the cached install, made host side because `node_modules` is read-only in the sandbox.
//! The schema's text is part of the key, and so are previewd's own `PRISMA_*` variables
//! (`PRISMA_ENGINES_MIRROR`, `PRISMA_SCHEMA_ENGINE_BINARY`, ...: how operators run Prisma on
//! offline hosts), which the generate command is given. A generator writing outside
//! `node_modules` (`output = "../generated"`) writes into the build folder too, and that tree is
//! copied into the project's working dir at every link, replacing what is there, so the app
//! imports it where its schema says; outputs leaving the package folder are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use previewd_plugin_api::project::normalize;
use previewd_plugin_api::Project;
use previewd_plugin_javascript::prisma::{self, PrismaSchema};
use tokio::process::Command;

use super::{blocking_io, copy_tree, io_error, write_file, NodeEnvError, DEPENDENCY_SECTIONS};
use crate::cache_build::CacheKey;
use crate::install_step::{self, StepError};

/// The dependencies that make a package generate a Prisma client.
const PRISMA_PACKAGES: &[&str] = &["@prisma/client", "prisma"];
/// The prefix of the environment variables Prisma's CLI reads, passed on to `prisma generate`.
pub(super) const PRISMA_ENV_PREFIX: &str = "PRISMA_";
/// Set for `prisma generate` (previewd's own `PRISMA_*` variables win): no update message and
/// no telemetry request (the CLI's "checkpoint") from an install.
const PRISMA_QUIET: &[(&str, &str)] = &[
    ("CHECKPOINT_DISABLE", "1"),
    ("PRISMA_HIDE_UPDATE_MESSAGE", "1"),
];

/// What `prisma generate` is run on, read from the package folder.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PrismaInput {
    /// The schema file or folder (what `--schema` is given), relative to the package folder.
    schema: PathBuf,
    /// Its `.prisma` files, relative to the package folder, with their text.
    files: Vec<(PathBuf, String)>,
    /// Generator outputs outside `node_modules`, relative to the package folder: generated into
    /// the build, copied into the project.
    outputs: Vec<PathBuf>,
    /// previewd's `PRISMA_*` variables, given to the generate command.
    env: BTreeMap<String, String>,
}

impl PrismaInput {
    /// The schema of the package in `dir` whose parsed `package.json` is `manifest`, when it
    /// depends on Prisma and has one; `env` is previewd's `PRISMA_*` variables.
    pub(super) fn read(
        dir: &Path,
        manifest: &serde_json::Value,
        env: &BTreeMap<String, String>,
    ) -> Result<Option<PrismaInput>, NodeEnvError> {
        let uses_prisma = PRISMA_PACKAGES.iter().any(|name| {
            DEPENDENCY_SECTIONS
                .iter()
                .any(|section| manifest.get(section).and_then(|d| d.get(name)).is_some())
        });
        if !uses_prisma {
            return Ok(None);
        }
        let project = Project::open(dir).map_err(io_error(dir))?;
        let Some(schema) = PrismaSchema::find(&project, Path::new(""), manifest) else {
            return Ok(None);
        };
        let mut files = Vec::new();
        let mut outputs = Vec::new();
        for file in schema.files {
            let text =
                std::fs::read_to_string(dir.join(&file)).map_err(io_error(&dir.join(&file)))?;
            let folder = file.parent().unwrap_or(Path::new(""));
            for output in prisma::generator_outputs(&text) {
                let resolved = normalize(&folder.join(&output))
                    .filter(|p| p.is_relative() && !p.as_os_str().is_empty())
                    .ok_or_else(|| NodeEnvError::PrismaOutput {
                        output: output.clone(),
                        file: file.clone(),
                    })?;
                if !resolved.starts_with("node_modules") && !outputs.contains(&resolved) {
                    outputs.push(resolved);
                }
            }
            files.push((file, text));
        }
        Ok(Some(PrismaInput {
            schema: schema.path,
            files,
            outputs,
            env: env.clone(),
        }))
    }

    /// The schema as `--schema` is given it.
    fn schema_arg(&self) -> String {
        self.schema.to_string_lossy().into_owned()
    }

    /// Feeds what decides the generated client into the install's cache key: the schema, its
    /// files' text and previewd's `PRISMA_*` variables.
    pub(super) fn feed_key(&self, key: &mut CacheKey) {
        key.feed("prisma-schema", self.schema_arg().as_bytes());
        for (path, text) in &self.files {
            key.feed("prisma-file", path.to_string_lossy().as_bytes());
            key.feed("prisma-text", text.as_bytes());
        }
        for (name, value) in &self.env {
            key.feed("prisma-env", name.as_bytes());
            key.feed("prisma-env-value", value.as_bytes());
        }
    }

    /// Runs `prisma generate` with `node` in the `build` folder npm installed into, on a copy of
    /// the schema's files, with previewd's `PRISMA_*` variables; its output to `progress`,
    /// killed after `timeout`.
    pub(super) async fn generate(
        &self,
        build: &Path,
        node: &Path,
        timeout: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), NodeEnvError> {
        if !build.join(prisma::CLI).is_file() {
            progress(format!(
                "prisma: not generating the client from {}: the package does not depend on \
                 prisma, the CLI that generates it (add it to devDependencies)",
                self.schema.display()
            ));
            return Ok(());
        }
        for (path, text) in &self.files {
            let target = build.join(path);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(io_error(parent))?;
            }
            write_file(&target, text).await?;
        }
        let schema = self.schema_arg();
        progress(format!("prisma: generating the client from {schema}…"));
        let started = Instant::now();
        let mut command = Command::new(node);
        command.args([prisma::CLI, "generate", "--schema", schema.as_str()]);
        for (name, value) in PRISMA_QUIET {
            command.env(name, value);
        }
        command.envs(&self.env);
        install_step::run(command, build, timeout, progress)
            .await
            .map_err(|error| match error {
                StepError::Spawn(source) => NodeEnvError::Spawn {
                    program: node.display().to_string(),
                    source,
                },
                StepError::Failed { status, tail } => NodeEnvError::PrismaGenerate {
                    schema: schema.clone(),
                    status,
                    tail,
                },
                StepError::Timeout { tail } => NodeEnvError::Timeout {
                    command: format!("prisma generate --schema {schema}"),
                    seconds: timeout.as_secs(),
                    tail,
                },
            })?;
        progress(format!(
            "prisma: client generated in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Copies the trees generated outside `node_modules` from the finished `install` into
    /// `work_dir`, replacing what is there, each reported to `progress`.
    pub(super) async fn copy_outputs(
        &self,
        install: &Path,
        work_dir: &Path,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), NodeEnvError> {
        for output in &self.outputs {
            if copy_generated(&install.join(output), work_dir, output).await? {
                progress(format!(
                    "prisma: the client generated into {} is copied into the project",
                    output.display()
                ));
            }
        }
        Ok(())
    }
}

/// Copies the generated tree `source` (in the cached install) to `work_dir/output`, replacing
/// what is there; whether there was one to copy. `output` is relative and climbs nowhere; a
/// symbolic link on the way (one the project brought) is refused rather than followed.
async fn copy_generated(
    source: &Path,
    work_dir: &Path,
    output: &Path,
) -> Result<bool, NodeEnvError> {
    if !tokio::fs::metadata(source).await.is_ok_and(|m| m.is_dir()) {
        return Ok(false);
    }
    let target = work_dir.join(output);
    let mut on_the_way = work_dir.to_path_buf();
    for component in output.parent().into_iter().flat_map(Path::components) {
        on_the_way.push(component);
        if tokio::fs::symlink_metadata(&on_the_way)
            .await
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(NodeEnvError::Io {
                path: on_the_way,
                source: std::io::Error::other("a symbolic link where the Prisma client goes"),
            });
        }
    }
    if let Ok(meta) = tokio::fs::symlink_metadata(&target).await {
        let removed = match meta.is_dir() {
            true => tokio::fs::remove_dir_all(&target).await,
            false => tokio::fs::remove_file(&target).await,
        };
        removed.map_err(io_error(&target))?;
    }
    let (from, to) = (source.to_path_buf(), target.clone());
    blocking_io(&target, move || copy_tree(&from, &to)).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::tests::{input, write_files, PACKAGE};
    use super::super::{InstallInput, NodeEnv, NodeEnvs};
    use super::*;

    const PRISMA_PACKAGE: &str = r#"{"dependencies": {"express": "^5", "@prisma/client": "7.10.0"}, "devDependencies": {"prisma": "7.10.0"}}"#;
    const LOCK: &str = r#"{"packages": {"": {}, "node_modules/prisma": {}}}"#;
    const SCHEMA: &str = "generator client {\n  provider = \"prisma-client-js\"\n}\n";

    /// A package using Prisma: its schema is read and is part of the key, so two projects with
    /// the same lockfile and different schemas never share a generated client; so are the
    /// `PRISMA_*` variables. Without a Prisma dependency, a schema changes nothing.
    #[tokio::test]
    async fn prisma_schema_is_part_of_the_key() {
        let files = |schema: &'static str| {
            [
                ("package.json", PRISMA_PACKAGE),
                ("package-lock.json", LOCK),
                ("prisma/schema.prisma", schema),
            ]
        };
        let a = input(&files(SCHEMA)).await;
        let prisma = a.prisma.as_ref().expect("prisma input");
        assert_eq!(prisma.schema, Path::new("prisma/schema.prisma"));
        assert_eq!(prisma.files.len(), 1);
        assert!(prisma.outputs.is_empty());
        let same = input(&files(SCHEMA)).await;
        assert_eq!(a.key("20"), same.key("20"));
        let other = input(&files("model Item {\n  id Int @id\n}\n")).await;
        assert_ne!(a.key("20"), other.key("20"), "another schema");

        let mut mirrored = a.clone();
        mirrored.prisma.as_mut().unwrap().env =
            BTreeMap::from([("PRISMA_ENGINES_MIRROR".into(), "http://mirror".into())]);
        assert_ne!(a.key("20"), mirrored.key("20"), "PRISMA_* variables");

        let plain = |schema: &'static str| {
            [
                ("package.json", PACKAGE),
                ("package-lock.json", LOCK),
                ("prisma/schema.prisma", schema),
            ]
        };
        let x = input(&plain(SCHEMA)).await;
        assert!(x.prisma.is_none());
        assert_eq!(x.key("20"), input(&plain("other")).await.key("20"));
    }

    /// Generator outputs outside node_modules are resolved against their file's folder; one
    /// leaving the package folder (or absolute) is refused, naming it.
    #[tokio::test]
    async fn prisma_generator_outputs() {
        let schema = "generator a {\n  output = \"../generated/prisma\"\n}\n\
                      generator b {\n  output = \"../node_modules/.prisma/b\"\n}\n";
        let read = input(&[
            ("package.json", PRISMA_PACKAGE),
            ("prisma/schema.prisma", schema),
        ])
        .await;
        assert_eq!(
            read.prisma.unwrap().outputs,
            [Path::new("generated/prisma")]
        );

        let dir = tempfile::tempdir().unwrap();
        write_files(
            dir.path(),
            &[
                ("package.json", PRISMA_PACKAGE),
                (
                    "prisma/schema.prisma",
                    "generator a {\n  output = \"../../up\"\n}\n",
                ),
                ("other/package.json", PRISMA_PACKAGE),
                (
                    "other/schema.prisma",
                    "generator a {\n  output = \"/tmp/abs\"\n}\n",
                ),
            ],
        );
        for (package, output) in [
            ("package.json", "../../up"),
            ("other/package.json", "/tmp/abs"),
        ] {
            let err = InstallInput::read(&dir.path().join(package), &BTreeMap::new())
                .await
                .unwrap_err();
            assert!(matches!(err, NodeEnvError::PrismaOutput { .. }), "{err}");
            assert!(err.to_string().contains(output), "{err}");
        }
    }

    /// A stand-in for the Prisma CLI, as an npm tarball in `dir` (installed offline from a
    /// `file:` range): `generate --schema S` fails when S says FAIL, else writes
    /// `node_modules/.prisma/client/index.js` holding its arguments and the `PRISMA_*`
    /// variables it was given, and `client.js` into the folder of an `output = "..."`.
    fn fake_prisma(dir: &Path) -> PathBuf {
        const CLI: &str = r#"
const fs = require('fs');
const path = require('path');
const args = process.argv.slice(2);
const schema = args[args.indexOf('--schema') + 1];
const text = fs.readFileSync(schema, 'utf8');
console.log('Prisma schema loaded from ' + schema);
if (text.includes('FAIL')) {
  console.log('Error: the schema is not valid');
  process.exit(1);
}
const env = Object.keys(process.env).filter((k) => k.startsWith('PRISMA_')).sort()
  .map((k) => k + '=' + process.env[k]);
fs.mkdirSync('node_modules/.prisma/client', { recursive: true });
fs.writeFileSync('node_modules/.prisma/client/index.js', JSON.stringify({ args, env }));
const output = text.match(/output\s*=\s*"([^"]+)"/);
if (output) {
  const out = path.join(path.dirname(schema), output[1]);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'client.js'), 'generated from ' + schema);
}
console.log('Generated Prisma Client (fake)');
"#;
        let path = dir.join("prisma-fake.tgz");
        let file = std::fs::File::create(&path).unwrap();
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut archive = tar::Builder::new(gz);
        for (name, text) in [
            (
                "package/package.json",
                r#"{"name": "prisma", "version": "0.0.0"}"#,
            ),
            ("package/build/index.js", CLI),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            archive
                .append_data(&mut header, name, text.as_bytes())
                .unwrap();
        }
        archive.into_inner().unwrap().finish().unwrap();
        path
    }

    /// Node envs in `<cache>/envs`, previewd's environment holding `PRISMA_ENGINES_MIRROR`.
    fn prisma_envs(cache: &Path) -> NodeEnvs {
        let mut envs = NodeEnvs::new(cache.join("envs")).unwrap();
        envs.prisma_env = BTreeMap::from([(
            "PRISMA_ENGINES_MIRROR".to_string(),
            "http://mirror.invalid".to_string(),
        )]);
        envs
    }

    /// `ensure` on a project depending on the fake Prisma CLI with `schema` at
    /// `prisma/schema.prisma`, in a fresh cache, with `PRISMA_ENGINES_MIRROR` set; the result,
    /// the progress lines, the project folder and the cache.
    async fn prisma_install(
        schema: &str,
    ) -> (
        Result<NodeEnv, NodeEnvError>,
        Vec<String>,
        tempfile::TempDir,
        tempfile::TempDir,
    ) {
        let cache = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let tarball = fake_prisma(cache.path());
        let manifest = format!(
            r#"{{"devDependencies": {{"prisma": "file:{}"}}}}"#,
            tarball.display()
        );
        write_files(
            project.path(),
            &[
                ("package.json", &manifest),
                ("prisma/schema.prisma", schema),
            ],
        );
        let envs = prisma_envs(cache.path());
        let lines = Mutex::new(Vec::new());
        let progress = |line: String| lines.lock().unwrap().push(line);
        let env = envs
            .ensure(
                &project.path().join("package.json"),
                project.path(),
                &progress,
            )
            .await;
        let lines = lines.into_inner().unwrap();
        (env, lines, project, cache)
    }

    /// After npm, `prisma generate --schema prisma/schema.prisma` runs in the build on a copy
    /// of the schema, with previewd's `PRISMA_*` variables, its output as progress lines; the
    /// client it generates is in the cached node_modules the project links to, and a generator
    /// output outside node_modules is copied into the project (again at every link, over what
    /// the project had there).
    #[tokio::test]
    async fn prisma_client_is_generated_into_the_install() {
        let schema =
            "generator client {\n  provider = \"prisma-client\"\n  output = \"../generated\"\n}\n";
        let (env, lines, project, cache) = prisma_install(schema).await;
        let env = env.unwrap_or_else(|e| panic!("{e}\n{lines:#?}"));
        let node_modules = env.node_modules.expect("node_modules");
        let client = std::fs::read_to_string(node_modules.join(".prisma/client/index.js")).unwrap();
        let client: serde_json::Value = serde_json::from_str(&client).unwrap();
        assert_eq!(
            client["args"],
            serde_json::json!(["generate", "--schema", "prisma/schema.prisma"])
        );
        let given = client["env"].to_string();
        assert!(
            given.contains("PRISMA_ENGINES_MIRROR=http://mirror.invalid"),
            "{given}"
        );
        assert!(given.contains("PRISMA_HIDE_UPDATE_MESSAGE=1"), "{given}");
        for expected in [
            "prisma: generating the client from prisma/schema.prisma…",
            "Generated Prisma Client (fake)",
            "prisma: the client generated into generated is copied into the project",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected:?} in {lines:#?}"
            );
        }
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("prisma: client generated in ")),
            "{lines:#?}"
        );
        let copied = project.path().join("generated/client.js");
        assert_eq!(
            std::fs::read_to_string(&copied).unwrap(),
            "generated from prisma/schema.prisma"
        );
        assert!(!std::fs::symlink_metadata(project.path().join("generated"))
            .unwrap()
            .file_type()
            .is_symlink());

        // A relink replaces a stale tree the project brought.
        std::fs::write(&copied, "stale").unwrap();
        std::fs::write(project.path().join("generated/old.js"), "old").unwrap();
        let lines = Mutex::new(Vec::new());
        let progress = |line: String| lines.lock().unwrap().push(line);
        let again = prisma_envs(cache.path())
            .ensure(
                &project.path().join("package.json"),
                project.path(),
                &progress,
            )
            .await
            .unwrap();
        assert!(again.reused, "{:#?}", lines.lock().unwrap());
        assert_eq!(
            std::fs::read_to_string(&copied).unwrap(),
            "generated from prisma/schema.prisma"
        );
        assert!(!project.path().join("generated/old.js").exists());
    }

    /// A failing `prisma generate` fails the install with an error carrying Prisma's last
    /// lines; nothing is cached.
    #[tokio::test]
    async fn failed_prisma_generate_fails_the_install() {
        let (env, _lines, _project, cache) = prisma_install("FAIL\n").await;
        let err = env.unwrap_err();
        assert!(matches!(err, NodeEnvError::PrismaGenerate { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("prisma generate --schema prisma/schema.prisma"),
            "{text}"
        );
        assert!(text.contains("Error: the schema is not valid"), "{text}");
        let left: Vec<_> = std::fs::read_dir(cache.path().join("envs"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
