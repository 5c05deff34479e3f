//! The project's own env file (`.env`, else `.env.example` and its kin) as the app's default
//! environment.
//!
//! Real projects keep their settings in a `.env` file, or document them in a `.env.example` a
//! developer copies, and their apps read the required ones at import (`SECRET_KEY =
//! os.environ["SECRET_KEY"]`, a pydantic `Settings` field without a default), so without them a
//! preview dies before it binds. previewd reads the first env file it finds in the app's working
//! dir, then in the project root (or cookiecutter-django's `.envs/.local/` folder of them), and
//! gives its variables to the app as defaults: the plan's,
//! the database's, the launch's `env` and previewd's own (`PORT`, `HOST`) win. A variable with
//! no value stays unset, as an empty string fails where an unset one takes its default, and so
//! does one holding a NUL, which no environment can. Those an interpreter reads at start-up
//! (`PYTHON*`, `NODE_OPTIONS`, `LD_*`) are left out, as a warm process has started already, and
//! so are the machine's, which previewd sets itself (`PATH`, `HOME`, `TMPDIR`, ...), and those
//! pointing at a server beside the app (`REDIS_URL=redis://localhost:6379`, `DB_HOST=db`), which
//! no preview has: set, they turn on what then fails to connect. So are those running the app
//! as in production (`NODE_ENV=production`, `SECURE_SSL_REDIRECT=True`): a preview is a
//! development run, served over plain HTTP. See [`LeftOut`].
//!
//! The parser is ours rather than dotenvy's: dotenvy expands `${NAME}` from the process
//! environment, which here is previewd's own (its token secret, its database admin URLs), and a
//! project's file must never copy those into an app. Here `$` is just a character. The syntax
//! is what python-dotenv and Node's dotenv agree on: `KEY=value`, an optional `export `, `#`
//! comments, `'literal'` and `"escaped\n"` values that may span lines, and unquoted values
//! ending at ` #`.

use std::path::{Path, PathBuf};

use crate::supervisor::launcher::is_base_variable;
use crate::supervisor::warm::start_up_variable;

/// The env files looked for, in order: the project's own, then its documented examples.
const FILE_NAMES: &[&str] = &[
    ".env",
    ".env.example",
    ".env.sample",
    ".env.template",
    ".env.dist",
    ".env.defaults",
    "example.env",
    ".env.local.example",
];
/// After those: a folder of env files, one per service, read together in name order
/// (cookiecutter-django's `.envs/.local/.django` and `.postgres`).
const FOLDER: &str = ".envs/.local";
/// Larger files are not env files.
const MAX_BYTES: u64 = 256 * 1024;
/// A folder with more files than this is not a folder of env files.
const MAX_FOLDER_FILES: usize = 16;

/// URL schemes of servers an app connects to (a `+driver` suffix aside).
const SERVER_SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "amqp",
    "amqps",
    "mongodb",
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "memcached",
    "nats",
    "kafka",
    "mssql",
];
/// Words in a variable's name saying its host is such a server's (`REDIS_HOST`, `DB_SERVER`).
const SERVER_WORDS: &[&str] = &[
    "REDIS",
    "MONGO",
    "POSTGRES",
    "PG",
    "MYSQL",
    "MARIADB",
    "DB",
    "DATABASE",
    "RABBITMQ",
    "AMQP",
    "MEMCACHED",
    "ELASTICSEARCH",
    "KAFKA",
    "NATS",
    "CACHE",
    "BROKER",
];

/// An env file and the variables previewd takes from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    /// The file (or folder of files), relative to the project root.
    pub file: PathBuf,
    /// Its variables with a value, in file order (a repeated name once, its last value).
    pub variables: Vec<(String, String)>,
    /// The variables it sets that previewd leaves out, in file order, and why.
    pub left_out: Vec<(String, LeftOut)>,
}

/// Why a variable of an env file is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOut {
    /// An interpreter reads it at start-up (`PYTHONPATH`, `NODE_OPTIONS`, `LD_*`), before a
    /// warm process is handed the app.
    StartUp,
    /// previewd sets it for every app (`PATH`, `HOME`, `TMPDIR`, ...).
    Machine,
    /// It points at a server beside the app (`REDIS_URL=redis://localhost`, `DB_HOST=db`),
    /// which no preview has: set, it turns on what then fails to connect.
    ServerBeside,
    /// It runs the app as in production (`NODE_ENV=production`, `SECURE_SSL_REDIRECT=True`):
    /// HTTPS redirects, production-only checks, built assets, where a preview is a
    /// development run.
    Production,
}

impl LeftOut {
    /// Every reason, in the order the log gives them.
    pub const ALL: [LeftOut; 4] = [
        LeftOut::StartUp,
        LeftOut::Machine,
        LeftOut::ServerBeside,
        LeftOut::Production,
    ];

    /// Why, in words, for the log.
    pub fn describe(self) -> &'static str {
        match self {
            LeftOut::StartUp => "the interpreter reads them at start-up",
            LeftOut::Machine => "previewd sets them",
            LeftOut::ServerBeside => {
                "they point at a server beside the app, which a preview does not have"
            }
            LeftOut::Production => {
                "they run the app as in production, where a preview is a development run"
            }
        }
    }

    /// Why `name=value` is left out, if it is.
    fn of(name: &str, value: &str) -> Option<LeftOut> {
        if start_up_variable([&name.to_string()]).is_some() {
            Some(LeftOut::StartUp)
        } else if is_base_variable(name) {
            Some(LeftOut::Machine)
        } else if names_a_server_beside_the_app(name, value) {
            Some(LeftOut::ServerBeside)
        } else if runs_as_in_production(name, value) {
            Some(LeftOut::Production)
        } else {
            None
        }
    }
}

impl EnvFile {
    /// The first env file in `working_dir` (relative to `project_dir`), then in `project_dir`;
    /// `None` when there is none, or it sets nothing. Blocking: it reads the file.
    pub fn find(project_dir: &Path, working_dir: &Path) -> Option<EnvFile> {
        let root = Path::new("");
        let dirs: &[&Path] = match working_dir == root {
            true => &[root],
            false => &[working_dir, root],
        };
        let (file, text) = dirs
            .iter()
            .flat_map(|dir| {
                FILE_NAMES
                    .iter()
                    .chain([&FOLDER])
                    .map(move |name| dir.join(name))
            })
            .find_map(|file| Some((file.clone(), read(&project_dir.join(file))?)))?;
        let mut variables: Vec<(String, String)> = Vec::new();
        let mut left_out = Vec::new();
        for (name, value) in parse(&text) {
            // A repeated name counts as its last assignment.
            variables.retain(|(seen, _)| *seen != name);
            left_out.retain(|(seen, _)| *seen != name);
            if let Some(why) = LeftOut::of(&name, &value) {
                left_out.push((name, why));
            } else if !value.is_empty() && !value.contains('\0') {
                variables.push((name, value));
            }
        }
        (!variables.is_empty() || !left_out.is_empty()).then_some(EnvFile {
            file,
            variables,
            left_out,
        })
    }

    /// The variables the app gets from it, in file order: all but those `set_elsewhere` (by
    /// the plan, the database or the launch) and previewd's own.
    pub fn defaults(&self, set_elsewhere: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        self.variables
            .iter()
            .filter(|(name, _)| !set_elsewhere(name) && !is_previewd_variable(name))
            .cloned()
            .collect()
    }
}

/// Variables naming the mode an app runs in (`NODE_ENV=production`).
const MODE_VARIABLES: &[&str] = &[
    "NODE_ENV",
    "APP_ENV",
    "ENV",
    "ENVIRONMENT",
    "APP_ENVIRONMENT",
    "FLASK_ENV",
    "DJANGO_ENV",
    "PYTHON_ENV",
];
/// Switches that make an app redirect every request to HTTPS, which a preview is not served on.
const HTTPS_SWITCHES: &[&str] = &[
    "SECURE_SSL_REDIRECT",
    "DJANGO_SECURE_SSL_REDIRECT",
    "FORCE_HTTPS",
    "FORCE_SSL",
    "HTTPS_ONLY",
];

/// Whether `name=value` runs the app as in production: a mode variable saying so, or an HTTPS
/// redirect switched on.
fn runs_as_in_production(name: &str, value: &str) -> bool {
    let value = value.trim().to_ascii_lowercase();
    let upper = name.to_ascii_uppercase();
    (MODE_VARIABLES.contains(&upper.as_str()) && matches!(value.as_str(), "production" | "prod"))
        || (HTTPS_SWITCHES.contains(&upper.as_str())
            && matches!(value.as_str(), "true" | "1" | "yes" | "on"))
}

/// Whether `name=value` points the app at a server beside it, on its machine (`localhost`) or
/// its compose network (a one-word host such as `redis`), which no preview has: a server URL
/// (`redis://localhost:6379/0`, `postgresql://u:p@db/app`) or a server's host variable
/// (`REDIS_HOST=localhost`). A developer's `.env` has them for the servers on their machine;
/// given to a preview they only turn on what then fails to connect (a cache, a broker), where
/// an unset one leaves the app to its defaults. Other URLs (`http://localhost:5173`, an API's
/// address) are kept: apps show them, or call them only when asked.
fn names_a_server_beside_the_app(name: &str, value: &str) -> bool {
    if let Some((scheme, rest)) = value.split_once("://") {
        let scheme = scheme
            .split('+')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !SERVER_SCHEMES.contains(&scheme.as_str()) {
            return false;
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let hosts = authority
            .rsplit_once('@')
            .map_or(authority, |(_, hosts)| hosts);
        let first = hosts.split(',').next().unwrap_or_default();
        return is_local_host(first);
    }
    let upper = name.to_ascii_uppercase();
    let is_host_variable = upper.ends_with("HOST") || upper.ends_with("SERVER");
    let words = upper.split('_').collect::<Vec<_>>();
    is_host_variable
        && SERVER_WORDS
            .iter()
            .any(|w| words.contains(w) || upper.starts_with(w))
        && is_local_host(value)
}

/// Whether `host` (`name`, `name:port`, `[::1]:port`) is this machine or a one-word name.
fn is_local_host(host: &str) -> bool {
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    let host = host.to_ascii_lowercase();
    matches!(
        host.as_str(),
        "localhost" | "127.0.0.1" | "0.0.0.0" | "::1" | "host.docker.internal"
    ) || (!host.is_empty() && !host.contains('.') && !host.contains(':'))
}

/// Whether previewd sets `name` for every app itself (`PORT`, `HOST`, `PREVIEWD_*`).
fn is_previewd_variable(name: &str) -> bool {
    matches!(name, "PORT" | "HOST") || name.starts_with("PREVIEWD_")
}

/// The text of the env file at `path`, or of the env files in the folder at `path` one after
/// the other; `None` for anything else (a link, a large file, a folder of many files).
fn read(path: &Path) -> Option<String> {
    if !std::fs::symlink_metadata(path).ok()?.is_dir() {
        return read_file(path);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .take(MAX_FOLDER_FILES + 1)
        .collect();
    if files.len() > MAX_FOLDER_FILES {
        return None;
    }
    files.sort();
    let texts: Vec<String> = files.iter().filter_map(|file| read_file(file)).collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

/// The text of the regular file at `path` of at most [`MAX_BYTES`].
fn read_file(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    (meta.is_file() && meta.len() <= MAX_BYTES)
        .then(|| std::fs::read_to_string(path).ok())
        .flatten()
}

/// The `(name, value)` assignments of an env file's text, in order; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut assignments = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let line = rest[..line_end].trim_start();
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        // A comment, a blank or malformed line: its name is not a variable's.
        let assignment = line.split_once('=').filter(|(name, _)| {
            let name = name.trim_end();
            name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        let Some((name, after)) = assignment else {
            rest = rest.get(line_end + 1..).unwrap_or("");
            continue;
        };
        let name = name.trim_end();
        // Where the value starts in `rest` (`after` ends where the line does), so a quoted
        // one may run past this line.
        let start = line_end - after.len();
        let value_text = &rest[start..];
        let trimmed = value_text.trim_start_matches([' ', '\t']);
        let (value, consumed) = match trimmed.chars().next() {
            Some(quote @ ('\'' | '"')) => match quoted(&trimmed[1..], quote) {
                Some((value, len)) => (value, value_text.len() - trimmed.len() + 1 + len),
                // No closing quote: the rest of the line, as written.
                None => (
                    trimmed[..trimmed.find('\n').unwrap_or(trimmed.len())]
                        .trim_end()
                        .to_string(),
                    0,
                ),
            },
            _ => {
                let line_value = &trimmed[..trimmed.find('\n').unwrap_or(trimmed.len())];
                let without_comment = match line_value.find(" #").or(line_value.find("\t#")) {
                    Some(at) => &line_value[..at],
                    None => line_value,
                };
                (without_comment.trim().to_string(), 0)
            }
        };
        assignments.push((name.to_string(), value));
        let after_value = &rest[start + consumed..];
        let skip = after_value
            .find('\n')
            .map_or(after_value.len(), |at| at + 1);
        rest = &after_value[skip..];
    }
    assignments
}

/// The value of a quoted string whose opening `quote` came just before `text`, and the bytes
/// it took up to and including the closing quote; `None` without one. Double quotes take
/// `\n`, `\t`, `\r`, `\"` and `\\` escapes; single quotes take everything as written.
fn quoted(text: &str, quote: char) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c == quote => return Some((value, at + c.len_utf8())),
            '\\' if quote == '"' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return None,
            },
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_the_common_dotenv_syntax() {
        let text = "# Settings\n\
                    SECRET_KEY=change-me\n\
                    export DEBUG=1\n\
                    \n\
                    NAME = spaced out   # a comment\n\
                    URL=postgres://u:p@h/db#frag\n\
                    SINGLE='literal ${HOME} \\n'\n\
                    DOUBLE=\"a\\nb \\\"q\\\"\"\n\
                    MULTI=\"line one\nline two\"\n\
                    AFTER=yes\n\
                    EMPTY=\n\
                    not a line\n\
                    1BAD=x\n\
                    # COMMENTED=out\n\
                    LAST=no newline";
        assert_eq!(
            pairs(text),
            owned(&[
                ("SECRET_KEY", "change-me"),
                ("DEBUG", "1"),
                ("NAME", "spaced out"),
                ("URL", "postgres://u:p@h/db#frag"),
                ("SINGLE", "literal ${HOME} \\n"),
                ("DOUBLE", "a\nb \"q\""),
                ("MULTI", "line one\nline two"),
                ("AFTER", "yes"),
                ("EMPTY", ""),
                ("LAST", "no newline"),
            ])
        );
    }

    /// `${NAME}` is never expanded: previewd's own environment stays its own.
    #[test]
    fn never_expands_variables() {
        assert_eq!(
            pairs("LEAK=${PREVIEWD_JWT_SECRET}\nALSO=\"$HOME\"\n"),
            owned(&[("LEAK", "${PREVIEWD_JWT_SECRET}"), ("ALSO", "$HOME")])
        );
    }

    /// An unclosed quote takes the rest of its line as written, and the next lines still parse;
    /// CRLF files parse as LF ones.
    #[test]
    fn unclosed_quotes_and_crlf() {
        assert_eq!(
            pairs("A=\"open\r\nB=2\r\nC='x'\r\n"),
            owned(&[("A", "\"open"), ("B", "2"), ("C", "x")])
        );
    }

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    /// `.env` before the examples, the working dir before the root; empty values and start-up
    /// variables are left out, a repeated name keeps its last value.
    #[test]
    fn finds_the_first_file_and_filters_it() {
        let dir = project(&[
            (".env.example", "ROOT=1\n"),
            ("backend/.env.sample", "SAMPLE=1\n"),
            (
                "backend/.env",
                "SECRET_KEY=a\nEMPTY=\nNUL=a\0b\nPYTHONPATH=/x\nNODE_OPTIONS=--inspect\nPATH=/bin\nSECRET_KEY=b\n",
            ),
        ]);
        let found = EnvFile::find(dir.path(), Path::new("backend")).expect("found");
        assert_eq!(found.file, Path::new("backend/.env"));
        assert_eq!(found.variables, owned(&[("SECRET_KEY", "b")]));
        assert_eq!(
            found.left_out,
            [
                ("PYTHONPATH".to_string(), LeftOut::StartUp),
                ("NODE_OPTIONS".to_string(), LeftOut::StartUp),
                ("PATH".to_string(), LeftOut::Machine)
            ]
        );

        std::fs::remove_file(dir.path().join("backend/.env")).expect("rm");
        let found = EnvFile::find(dir.path(), Path::new("backend")).expect("found");
        assert_eq!(found.file, Path::new("backend/.env.sample"));
        let found = EnvFile::find(dir.path(), Path::new("")).expect("found");
        assert_eq!(found.file, Path::new(".env.example"));
        assert_eq!(found.defaults(|_| false), owned(&[("ROOT", "1")]));
    }

    /// cookiecutter-django's `.envs/.local/` files are read together, in name order, after the
    /// single files; a folder of many files is not one of env files.
    #[test]
    fn a_folder_of_env_files() {
        let dir = project(&[
            (
                ".envs/.local/.django",
                "USE_DOCKER=yes\nDJANGO_READ_DOT_ENV_FILE=False\n",
            ),
            (
                ".envs/.local/.postgres",
                "POSTGRES_HOST=postgres\nPOSTGRES_DB=app\n",
            ),
            (".envs/.production/.django", "DJANGO_SECRET_KEY=prod\n"),
        ]);
        let found = EnvFile::find(dir.path(), Path::new("")).expect("found");
        assert_eq!(found.file, Path::new(".envs/.local"));
        assert_eq!(
            found.variables,
            owned(&[
                ("USE_DOCKER", "yes"),
                ("DJANGO_READ_DOT_ENV_FILE", "False"),
                ("POSTGRES_DB", "app")
            ])
        );
        assert_eq!(
            found.left_out,
            [("POSTGRES_HOST".to_string(), LeftOut::ServerBeside)]
        );

        let many: Vec<(String, &str)> = (0..=MAX_FOLDER_FILES)
            .map(|i| (format!(".envs/.local/f{i}"), "A=1\n"))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(p, t)| (p.as_str(), *t)).collect();
        let dir = project(&many);
        assert_eq!(EnvFile::find(dir.path(), Path::new("")), None);
    }

    /// Servers beside the app (this machine, a compose service) are left out; other hosts,
    /// web addresses and non-host settings are kept.
    #[test]
    fn servers_beside_the_app() {
        for (name, value) in [
            ("REDIS_URL", "redis://localhost:6379/0"),
            ("CELERY_BROKER_URL", "amqp://guest:guest@rabbitmq:5672//"),
            ("DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/app"),
            ("MONGO_URI", "mongodb://127.0.0.1:27017,127.0.0.1:27018/app"),
            ("CACHE_URL", "rediss://[::1]:6380"),
            ("REDIS_HOST", "localhost"),
            ("DB_HOST", "db"),
            ("POSTGRES_SERVER", "127.0.0.1"),
        ] {
            assert!(names_a_server_beside_the_app(name, value), "{name}={value}");
        }
        for (name, value) in [
            ("DATABASE_URL", "postgresql://u:p@db.example.com/app"),
            ("FRONTEND_URL", "http://localhost:5173"),
            (
                "BACKEND_CORS_ORIGINS",
                "http://localhost,http://localhost:5173",
            ),
            ("REDIS_HOST", "cache.internal.example.com"),
            ("HOSTNAME", "web"),
            ("SMTP_HOST", "localhost"),
            ("SECRET_KEY", "localhost"),
            ("ALLOWED_HOSTS", "localhost"),
        ] {
            assert!(
                !names_a_server_beside_the_app(name, value),
                "{name}={value}"
            );
        }
    }

    /// Production modes and HTTPS redirects are left out; other modes and switches are kept.
    #[test]
    fn production_modes() {
        for (name, value) in [
            ("NODE_ENV", "production"),
            ("ENVIRONMENT", "Production"),
            ("APP_ENV", "prod"),
            ("SECURE_SSL_REDIRECT", "True"),
            ("FORCE_HTTPS", "1"),
        ] {
            assert_eq!(
                LeftOut::of(name, value),
                Some(LeftOut::Production),
                "{name}={value}"
            );
        }
        for (name, value) in [
            ("NODE_ENV", "development"),
            ("ENVIRONMENT", "local"),
            ("SECURE_SSL_REDIRECT", "False"),
            ("LOG_LEVEL", "production"),
        ] {
            assert_eq!(LeftOut::of(name, value), None, "{name}={value}");
        }
    }

    /// What others set, and previewd's own variables, are not the file's to give.
    #[test]
    fn defaults_leave_what_is_set_elsewhere() {
        let dir = project(&[(
            ".env",
            "PORT=1\nHOST=h\nPREVIEWD_X=1\nDATABASE_URL=u\nKEY=v\n",
        )]);
        let found = EnvFile::find(dir.path(), Path::new("")).expect("found");
        assert_eq!(
            found.defaults(|name| name == "DATABASE_URL"),
            owned(&[("KEY", "v")])
        );
    }

    /// No file, a file setting nothing, a directory or a symlink by that name: nothing.
    #[test]
    fn nothing_to_take() {
        let dir = project(&[("app.py", "")]);
        assert_eq!(EnvFile::find(dir.path(), Path::new("")), None);
        let dir = project(&[(".env.example", "# SECRET_KEY=\nEMPTY=\n")]);
        assert_eq!(EnvFile::find(dir.path(), Path::new("")), None);
        let dir = project(&[("outside", "A=1\n")]);
        std::os::unix::fs::symlink(dir.path().join("outside"), dir.path().join(".env"))
            .expect("symlink");
        assert_eq!(EnvFile::find(dir.path(), Path::new("")), None);
    }
}
