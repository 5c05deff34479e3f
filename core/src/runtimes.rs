//! The launcher scripts previewd ships with itself (`runtimes/` in the source tree), embedded in
//! the binary and written out under the data dir at start-up, so an installed previewd needs no
//! source checkout to run.

use std::path::{Path, PathBuf};

/// The Python launcher: imports the app, reports its routes, serves it.
pub const PYTHON_LAUNCHER: &str = include_str!("../../runtimes/python/launcher.py");
/// The packages the Python launcher needs.
pub const PYTHON_REQUIREMENTS: &str = include_str!("../../runtimes/python/requirements.txt");

/// Where the launchers were written.
#[derive(Debug, Clone)]
pub struct Runtimes {
    dir: PathBuf,
}

impl Runtimes {
    /// Writes the launchers into `dir` (rewriting them only when their content changed).
    pub fn install(dir: &Path) -> std::io::Result<Runtimes> {
        let python = dir.join("python");
        std::fs::create_dir_all(&python)?;
        write_if_changed(&python.join("launcher.py"), PYTHON_LAUNCHER)?;
        write_if_changed(&python.join("requirements.txt"), PYTHON_REQUIREMENTS)?;
        Ok(Runtimes {
            dir: dir.to_path_buf(),
        })
    }

    /// The Python launcher script.
    pub fn python_launcher(&self) -> PathBuf {
        self.dir.join("python").join("launcher.py")
    }
}

fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    // Write beside and rename, so a launcher being started never reads half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, content)?;
    std::fs::rename(partial, path)
}
