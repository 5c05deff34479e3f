//! The key naming a cached env: a sha256 over everything that decides what gets installed
//! (installer kind, base python, the launcher's requirements, each manifest's name and text,
//! and the project dir when a manifest points at local files), so identical inputs share one
//! env and anything that changes the contents gets a new one.

use std::path::Path;

use super::base_python::BasePython;
use super::manifest::Manifest;
use super::plan::InstallPlan;
use crate::cache_build::CacheKey;

/// Bumped when the layout of an env changes, so older envs are not reused.
const KEY_SCHEME: &str = "previewd-python-env-v1";

/// The key naming an env: the first 128 bits (hex) of a sha256 over everything that decides
/// what gets installed. `installer` is [`super::installer::Installer::kind`].
pub(super) fn env_key(
    installer: &str,
    python: &BasePython,
    plan: &InstallPlan,
    manifests: &[Manifest],
    project_dir: &Path,
) -> String {
    let mut key = CacheKey::new(KEY_SCHEME);
    key.feed("installer", installer.as_bytes());
    key.feed("python-version", python.version.as_bytes());
    key.feed("python", python.executable.as_os_str().as_encoded_bytes());
    key.feed("base", plan.base.as_bytes());
    for manifest in manifests {
        key.feed("manifest-name", manifest.name.as_bytes());
        key.feed("manifest", manifest.text.as_bytes());
    }
    if plan.local_references {
        key.feed("project-dir", project_dir.as_os_str().as_encoded_bytes());
    }
    key.finish()
}

/// The short form of a key for progress lines: `3f2a1b0c…`.
pub(super) fn short(key: &str) -> String {
    format!("{}…", key.get(..8).unwrap_or(key))
}

#[cfg(test)]
mod tests {
    use super::super::manifest::fixtures::{manifest, BASE};
    use super::*;

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

    #[test]
    fn short_keys() {
        assert_eq!(short("3f2a1b0c9d"), "3f2a1b0c…");
        assert_eq!(short("3f2a"), "3f2a…");
    }
}
