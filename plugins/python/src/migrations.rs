//! The database migrations a Python project applies with a tool previewd knows: Alembic.

use previewd_plugin_api::Project;

/// `-m alembic upgrade head` when `working_dir` (relative to the project root) holds an
/// `alembic.ini`; else nothing.
pub fn alembic_upgrade(project: &Project, working_dir: &str) -> Vec<String> {
    let ini = match working_dir.trim_matches('/') {
        "" => "alembic.ini".to_string(),
        dir => format!("{dir}/alembic.ini"),
    };
    match project.has_file(&ini) {
        true => ["-m", "alembic", "upgrade", "head"]
            .map(String::from)
            .into(),
        false => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn alembic_runs_where_its_ini_is() {
        let files = vec![
            PathBuf::from("backend/alembic.ini"),
            PathBuf::from("backend/app.py"),
        ];
        let project = Project::from_files("/nowhere", files);
        assert_eq!(
            alembic_upgrade(&project, "backend"),
            ["-m", "alembic", "upgrade", "head"]
        );
        assert!(alembic_upgrade(&project, "").is_empty());
    }
}
