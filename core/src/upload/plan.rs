//! The plan of an upload: which files and folders will be written where. Building it applies
//! every rule that does not need the file contents (counts, declared sizes, duplicates,
//! file-versus-folder conflicts), entry by entry, so a hostile listing is refused as early as
//! possible and before anything is written.

use std::collections::HashMap;

use super::error::UploadError;
use super::limits::UploadLimits;
use super::paths::{shown, ProjectPath};

/// One file to write.
#[derive(Debug)]
pub(crate) struct PlannedFile {
    /// Where the content comes from: the index in the JSON list, the tar entry's ordinal, or the
    /// zip entry's index.
    pub(crate) source: usize,
    /// Where it goes.
    pub(crate) path: ProjectPath,
    /// Whether the upload marked it executable (written `0755` instead of `0644`).
    pub(crate) executable: bool,
}

/// Everything an upload will write, in source order.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The files, ordered by `source`.
    pub(crate) files: Vec<PlannedFile>,
    /// Folders the upload declares explicitly (so that empty ones exist too).
    pub(crate) dirs: Vec<ProjectPath>,
}

/// What already occupies a path, with the entry that put it there (for messages).
enum Node {
    File(String),
    Dir(String),
}

/// Collects entries into a [`Plan`], refusing the first one that breaks a rule.
pub(crate) struct PlanBuilder<'a> {
    limits: &'a UploadLimits,
    files: Vec<PlannedFile>,
    dirs: Vec<ProjectPath>,
    total_bytes: u64,
    nodes: HashMap<String, Node>,
}

impl<'a> PlanBuilder<'a> {
    /// An empty plan under `limits`.
    pub(crate) fn new(limits: &'a UploadLimits) -> Self {
        Self {
            limits,
            files: Vec::new(),
            dirs: Vec::new(),
            total_bytes: 0,
            nodes: HashMap::new(),
        }
    }

    /// Adds a file of `size` bytes from `source`, spelled `raw` by the upload.
    pub(crate) fn add_file(
        &mut self,
        source: usize,
        raw: &str,
        path: ProjectPath,
        size: u64,
        executable: bool,
    ) -> Result<(), UploadError> {
        let limits = self.limits;
        if self.files.len() >= limits.max_files {
            return Err(UploadError::TooManyFiles {
                limit: limits.max_files,
                what: "files",
            });
        }
        if size > limits.max_file_bytes {
            return Err(UploadError::FileTooLarge {
                path: shown(raw),
                limit: limits.max_file_bytes,
            });
        }
        self.total_bytes = self.total_bytes.saturating_add(size);
        if self.total_bytes > limits.max_total_bytes {
            return Err(UploadError::UploadTooLarge {
                limit: limits.max_total_bytes,
            });
        }
        match self.nodes.get(path.as_str()) {
            Some(Node::File(_)) => return Err(UploadError::DuplicatePath { path: shown(raw) }),
            Some(Node::Dir(other)) => {
                return Err(UploadError::PathConflict {
                    file: shown(raw),
                    other: other.clone(),
                });
            }
            None => {}
        }
        self.claim_ancestors(raw, &path)?;
        self.nodes
            .insert(path.as_str().to_owned(), Node::File(shown(raw)));
        self.files.push(PlannedFile {
            source,
            path,
            executable,
        });
        Ok(())
    }

    /// Adds a folder, spelled `raw` by the upload.
    pub(crate) fn add_dir(&mut self, raw: &str, path: ProjectPath) -> Result<(), UploadError> {
        match self.nodes.get(path.as_str()) {
            Some(Node::File(file)) => {
                return Err(UploadError::PathConflict {
                    file: file.clone(),
                    other: shown(raw),
                });
            }
            Some(Node::Dir(_)) => return Ok(()),
            None => {}
        }
        if self.dirs.len() >= self.limits.max_files {
            return Err(UploadError::TooManyFiles {
                limit: self.limits.max_files,
                what: "folders",
            });
        }
        self.claim_ancestors(raw, &path)?;
        self.nodes
            .insert(path.as_str().to_owned(), Node::Dir(shown(raw)));
        self.dirs.push(path);
        Ok(())
    }

    /// Marks every ancestor of `path` as a folder, refusing if one is a file.
    fn claim_ancestors(&mut self, raw: &str, path: &ProjectPath) -> Result<(), UploadError> {
        for ancestor in path.ancestors() {
            match self.nodes.get(ancestor) {
                Some(Node::File(file)) => {
                    return Err(UploadError::PathConflict {
                        file: file.clone(),
                        other: shown(raw),
                    });
                }
                Some(Node::Dir(_)) => {}
                None => {
                    self.nodes
                        .insert(ancestor.to_owned(), Node::Dir(shown(raw)));
                }
            }
        }
        Ok(())
    }

    /// The finished plan; refuses an upload without files. With `strip_single_top`, a single
    /// top-level folder that holds every entry is removed from all paths (see
    /// [`extract_archive`](super::extract_archive)).
    pub(crate) fn finish(self, strip_single_top: bool) -> Result<Plan, UploadError> {
        if self.files.is_empty() {
            return Err(UploadError::EmptyUpload);
        }
        let plan = Plan {
            files: self.files,
            dirs: self.dirs,
        };
        Ok(if strip_single_top {
            strip_single_top_folder(plan)
        } else {
            plan
        })
    }
}

/// Removes the first component from every path when all entries live under one top-level
/// folder; leaves the plan alone otherwise. A folder that is itself a Python package (holds an
/// `__init__.py`) is the project's own code, not a wrapper, and is kept: `app/main.py` doing
/// `from app.routers import users` must stay `app/main.py`.
fn strip_single_top_folder(mut plan: Plan) -> Plan {
    let Some(top) = plan.files.first().map(|file| file.path.first().to_owned()) else {
        return plan;
    };
    let shared = plan
        .files
        .iter()
        .all(|file| !file.path.is_top_level() && file.path.first() == top)
        && plan.dirs.iter().all(|dir| dir.first() == top);
    let package = plan
        .files
        .iter()
        .any(|file| file.path.as_str() == format!("{top}/__init__.py"));
    if !shared || package {
        return plan;
    }
    for file in &mut plan.files {
        if let Some(inner) = file.path.without_first() {
            file.path = inner;
        }
    }
    plan.dirs = plan
        .dirs
        .iter()
        .filter_map(ProjectPath::without_first)
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::paths::file_path;

    fn path(raw: &str) -> ProjectPath {
        file_path(raw).unwrap()
    }

    fn build(
        entries: &[(&str, bool)],
        limits: &UploadLimits,
        strip: bool,
    ) -> Result<Vec<String>, &'static str> {
        let mut builder = PlanBuilder::new(limits);
        for (source, (raw, is_dir)) in entries.iter().enumerate() {
            let result = if *is_dir {
                builder.add_dir(raw, path(raw))
            } else {
                builder.add_file(source, raw, path(raw), 1, false)
            };
            result.map_err(|error| error.code())?;
        }
        let plan = builder.finish(strip).map_err(|error| error.code())?;
        Ok(plan
            .files
            .iter()
            .map(|file| file.path.as_str().to_owned())
            .collect())
    }

    /// The same file twice is a duplicate; a folder entry twice is fine.
    #[test]
    fn duplicates() {
        let limits = UploadLimits::default();
        assert_eq!(
            build(&[("a.py", false), ("a.py", false)], &limits, false),
            Err("duplicate_path")
        );
        assert!(build(&[("d", true), ("d", true), ("d/a", false)], &limits, false).is_ok());
    }

    /// A file may not also be a folder, whichever entry comes first.
    #[test]
    fn file_versus_folder() {
        let limits = UploadLimits::default();
        for entries in [
            vec![("a", false), ("a/b", false)],
            vec![("a/b", false), ("a", false)],
            vec![("a", true), ("a", false)],
            vec![("a", false), ("a", true)],
            vec![("a/b", false), ("a/b/c/d", false)],
        ] {
            assert_eq!(
                build(&entries, &limits, false),
                Err("path_conflict"),
                "{entries:?}"
            );
        }
    }

    /// Counts and sizes are checked entry by entry.
    #[test]
    fn limits_apply_per_entry() {
        let limits = UploadLimits {
            max_files: 1,
            max_file_bytes: 1,
            max_total_bytes: 1,
        };
        assert_eq!(
            build(&[("a", false), ("b", false)], &limits, false),
            Err("too_many_files")
        );
        assert_eq!(
            build(&[("a", true), ("b", true)], &limits, false),
            Err("too_many_files")
        );
        let mut builder = PlanBuilder::new(&limits);
        let error = builder.add_file(0, "big", path("big"), 2, false).err();
        assert_eq!(error.map(|error| error.code()), Some("file_too_large"));
        let limits = UploadLimits {
            max_files: 5,
            max_file_bytes: 1,
            max_total_bytes: 1,
        };
        assert_eq!(
            build(&[("a", false), ("b", false)], &limits, false),
            Err("upload_too_large")
        );
    }

    /// Folders alone make an empty upload.
    #[test]
    fn folders_only_is_empty() {
        assert_eq!(
            build(&[("d", true)], &UploadLimits::default(), false),
            Err("empty_upload")
        );
    }

    /// A single top-level folder is stripped only when it holds every entry.
    #[test]
    fn single_top_folder_stripping() {
        let limits = UploadLimits::default();
        let wrapped = [
            ("proj", true),
            ("proj/a.py", false),
            ("proj/app/b.py", false),
        ];
        assert_eq!(
            build(&wrapped, &limits, true),
            Ok(vec!["a.py".into(), "app/b.py".into()])
        );
        assert_eq!(
            build(&wrapped, &limits, false),
            Ok(vec!["proj/a.py".into(), "proj/app/b.py".into()])
        );
        let mixed = [("proj/a.py", false), ("README.md", false)];
        assert_eq!(
            build(&mixed, &limits, true),
            Ok(vec!["proj/a.py".into(), "README.md".into()])
        );
        assert_eq!(
            build(&[("main.py", false)], &limits, true),
            Ok(vec!["main.py".into()])
        );
        let stray_dir = [("proj/a.py", false), ("other", true)];
        assert_eq!(
            build(&stray_dir, &limits, true),
            Ok(vec!["proj/a.py".into()])
        );
        let package = [("app/__init__.py", false), ("app/main.py", false)];
        assert_eq!(
            build(&package, &limits, true),
            Ok(vec!["app/__init__.py".into(), "app/main.py".into()]),
            "a Python package is the project's code, not a wrapper"
        );
    }
}
