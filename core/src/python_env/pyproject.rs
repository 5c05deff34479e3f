//! What a project's `pyproject.toml` says about its dependencies, read with the `toml` crate:
//! the static PEP 621 `[project].dependencies` list is installed; Poetry's
//! `[tool.poetry.dependencies]` and dynamic dependencies are not, and are only reported.

use toml::{Table, Value};

/// What a `pyproject.toml` says about its dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dependencies {
    /// `[project].dependencies`: requirement strings (possibly none).
    Listed(Vec<String>),
    /// No `[project].dependencies`, but Poetry's `[tool.poetry.dependencies]`.
    Poetry,
    /// No static `[project].dependencies` (absent, or declared `dynamic`).
    Unlisted,
    /// The file is not TOML, or `[project].dependencies` is not a list of strings: why.
    Unreadable(String),
}

/// Reads the dependencies out of the text of a `pyproject.toml`.
pub(super) fn dependencies(text: &str) -> Dependencies {
    let document = match text.parse::<Table>() {
        Ok(document) => document,
        Err(error) => return Dependencies::Unreadable(describe_error(text, &error)),
    };
    let listed = table(&document, "project").and_then(|project| project.get("dependencies"));
    match listed {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map_or_else(
                || Dependencies::Unreadable("[project].dependencies holds a non-string".into()),
                Dependencies::Listed,
            ),
        Some(other) => Dependencies::Unreadable(format!(
            "[project].dependencies is a {}, not a list of strings",
            other.type_str()
        )),
        None if has_poetry_dependencies(&document) => Dependencies::Poetry,
        None => Dependencies::Unlisted,
    }
}

/// The sub-table `name` of `parent`, if it is one.
fn table<'a>(parent: &'a Table, name: &str) -> Option<&'a Table> {
    parent.get(name).and_then(Value::as_table)
}

/// Whether the document has a `[tool.poetry.dependencies]` table.
fn has_poetry_dependencies(document: &Table) -> bool {
    table(document, "tool")
        .and_then(|tool| table(tool, "poetry"))
        .and_then(|poetry| table(poetry, "dependencies"))
        .is_some()
}

/// `invalid TOML at line 3: ...`: the parser's message, on one line, with where it is.
fn describe_error(text: &str, error: &toml::de::Error) -> String {
    let message = error
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match error.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(1, |before| before.matches('\n').count() + 1);
            format!("invalid TOML at line {line}: {message}")
        }
        None => format!("invalid TOML: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(items: &[&str]) -> Dependencies {
        Dependencies::Listed(items.iter().map(|item| item.to_string()).collect())
    }

    /// Only `[project].dependencies` is read: not other tables' `dependencies`, not extras.
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
            dependencies(toml),
            listed(&[
                "fastapi>=0.110",
                "sqlalchemy[asyncio]==2.0.36",
                "pydantic-settings; python_version >= \"3.9\"",
            ])
        );
        assert_eq!(dependencies("[project]\ndependencies = []\n"), listed(&[]));
        assert_eq!(
            dependencies("[project]\ndynamic = [\"dependencies\"]\n"),
            Dependencies::Unlisted
        );
        assert_eq!(dependencies("[tool.black]\n"), Dependencies::Unlisted);
    }

    /// Comments anywhere in a multi-line array, trailing commas, escapes and multi-line strings
    /// are TOML the old line reader could not follow.
    #[test]
    fn multi_line_arrays_with_comments() {
        let toml = r#"
[project]
name = "app"
dependencies = [  # what the app needs
    # the web part
    "fastapi>=0.110",

    # storage, with its extras
    "sqlalchemy[asyncio]==2.0.36" ,  # pinned
    """httpx""",
    "tzdata; sys_platform == \"win32\"",
]  # end
version = "1.0"
"#;
        assert_eq!(
            dependencies(toml),
            listed(&[
                "fastapi>=0.110",
                "sqlalchemy[asyncio]==2.0.36",
                "httpx",
                "tzdata; sys_platform == \"win32\"",
            ])
        );
    }

    /// Inline tables and dotted keys are the same tables as `[project]` headers.
    #[test]
    fn inline_tables_and_dotted_keys() {
        assert_eq!(
            dependencies("project = { name = \"app\", dependencies = [\"requests\"] }\n"),
            listed(&["requests"])
        );
        assert_eq!(
            dependencies("project.name = \"app\"\nproject.dependencies = ['a', \"b\"]\n"),
            listed(&["a", "b"])
        );
        assert_eq!(
            dependencies("[project]\nname = \"app\"\nurls = { home = \"https://x\" }\n"),
            Dependencies::Unlisted
        );
    }

    /// Poetry's dependency table is noticed, however it is written; a PEP 621 list wins.
    #[test]
    fn poetry_dependencies() {
        assert_eq!(
            dependencies("[tool.poetry.dependencies] # x\npython = \"^3.11\"\n"),
            Dependencies::Poetry
        );
        assert_eq!(
            dependencies(
                "[tool.poetry]\nname = \"app\"\ndependencies = { requests = \"^2.32\" }\n"
            ),
            Dependencies::Poetry
        );
        assert_eq!(
            dependencies("[tool.poetry]\nname = \"app\"\n"),
            Dependencies::Unlisted,
            "Poetry metadata without dependencies"
        );
        assert_eq!(
            dependencies(
                "[project]\ndependencies = [\"requests\"]\n\n[tool.poetry.dependencies]\npython = \"^3.11\"\n"
            ),
            listed(&["requests"])
        );
    }

    /// Invalid TOML and a `dependencies` that is not a list of strings say why.
    #[test]
    fn unreadable() {
        let reason = |text| match dependencies(text) {
            Dependencies::Unreadable(reason) => reason,
            other => panic!("{text:?} gave {other:?}"),
        };
        assert_eq!(
            reason("[project]\ndependencies = \"oops\"\n"),
            "[project].dependencies is a string, not a list of strings"
        );
        assert_eq!(
            reason("[project]\ndependencies = [\"a\", 1]\n"),
            "[project].dependencies holds a non-string"
        );
        let unclosed = reason("[project]\nname = \"app\"\ndependencies = [\"unclosed\"\n");
        assert!(unclosed.starts_with("invalid TOML at line "), "{unclosed}");
        assert!(!unclosed.contains('\n'), "{unclosed}");
    }
}
