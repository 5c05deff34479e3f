//! [`InstallPlan`]: what one env installs and how, decided from the inputs alone before anything
//! runs: the launcher's requirements (pinned alone, unpinned next to a project's manifests), the
//! install arguments for each manifest, the progress lines describing them, and whether the env
//! depends on the project directory.

use std::path::PathBuf;

use super::manifest::{
    count_requirements, refers_to_local_files, requirement_names, unpinned, Manifest,
};
use super::pyproject::{self, Dependencies};
use crate::words::counted;

/// What goes on the install command line after the base requirements file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
    /// `-r <file>`.
    File(PathBuf),
    /// Requirement strings read out of a `pyproject.toml`, for pip, which cannot read one.
    Requirements(Vec<String>),
}

/// How one env is installed: decided from the inputs alone, before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InstallPlan {
    /// The launcher's requirements as installed: pinned alone, unpinned next to manifests.
    pub(super) base: String,
    /// The project's manifests as install arguments.
    pub(super) sources: Vec<Source>,
    /// Progress lines about manifest contents that are not installed.
    pub(super) notes: Vec<String>,
    /// What is installed, for the progress line, e.g. `requirements.txt (12 packages) and the
    /// launcher's packages (fastapi, uvicorn[standard])`.
    pub(super) summary: String,
    /// Whether a manifest refers to files next to it (`-r other.txt`, `-e .`, `./pkg`): then the
    /// env also depends on the project dir and is not shared between projects.
    pub(super) local_references: bool,
    /// The manifests' file names, recorded in the ready marker.
    pub(super) manifest_names: Vec<String>,
}

impl InstallPlan {
    /// `reads_pyproject`: the installer takes a `pyproject.toml` with `-r` (uv does, pip does
    /// not: it gets the dependency strings read out of the file here).
    pub(super) fn new(
        base_requirements: &str,
        manifests: &[Manifest],
        reads_pyproject: bool,
    ) -> InstallPlan {
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
            match pyproject::dependencies(&manifest.text) {
                Dependencies::Listed(dependencies) if !dependencies.is_empty() => {
                    described.push(packages(&manifest.name, dependencies.len()));
                    sources.push(if reads_pyproject {
                        Source::File(manifest.path.clone())
                    } else {
                        Source::Requirements(dependencies)
                    });
                }
                Dependencies::Listed(_) => notes.push(format!(
                    "{}: [project].dependencies is empty; nothing to install from it",
                    manifest.name
                )),
                Dependencies::Poetry => notes.push(format!(
                    "{}: Poetry dependencies ([tool.poetry.dependencies]) are not installed; \
                     list them in requirements.txt or in [project].dependencies",
                    manifest.name
                )),
                Dependencies::Unlisted => notes.push(format!(
                    "{}: no static [project].dependencies list; nothing installed from it",
                    manifest.name
                )),
                Dependencies::Unreadable(reason) => notes.push(format!(
                    "{}: could not read [project].dependencies ({reason}); nothing installed \
                     from it",
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

/// `requirements.txt (12 packages)`.
fn packages(name: &str, count: usize) -> String {
    format!("{name} ({})", counted(count, "package"))
}

/// `a`, `a and b`, `a, b and c`.
fn join_words(items: &[String]) -> String {
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::manifest::fixtures::{manifest, BASE};
    use super::*;

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

        let broken = manifest("pyproject.toml", "[project\n");
        let plan = InstallPlan::new(BASE, &[broken], true);
        assert!(plan.sources.is_empty());
        assert!(
            plan.notes[0].starts_with(
                "pyproject.toml: could not read [project].dependencies (invalid TOML at line 1"
            ),
            "{}",
            plan.notes[0]
        );
    }

    #[test]
    fn joins_words() {
        assert_eq!(join_words(&["a".into()]), "a");
        assert_eq!(join_words(&["a".into(), "b".into()]), "a and b");
        assert_eq!(
            join_words(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
        assert_eq!(
            packages("requirements.txt", 1),
            "requirements.txt (1 package)"
        );
    }
}
