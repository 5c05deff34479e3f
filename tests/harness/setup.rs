//! Installing what tests need on a fresh machine, once: locks held across test processes (and
//! nextest's), set-up commands that must succeed, and Debian packages.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::fcntl::{Flock, FlockArg};

/// Holds an exclusive lock on `target/tmp/<name>.lock` until dropped, across threads and
/// processes alike (`flock` locks belong to the open file, not the process).
pub fn file_lock(name: &str) -> Flock<File> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp");
    std::fs::create_dir_all(&dir).expect("target/tmp");
    let file = File::create(dir.join(format!("{name}.lock"))).expect("lock file");
    Flock::lock(file, FlockArg::LockExclusive).expect("flock")
}

/// Runs `command` (stdin closed); its combined output on success, a panic naming it with its
/// output if it cannot start or fails. Says how long it took.
pub fn run(mut command: Command, what: &str) -> String {
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("{what}: cannot run {command:?}: {err}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{text}",
        output.status
    );
    eprintln!("{what}: {:.1?}", started.elapsed());
    text
}

/// Installs Debian's `package` unless `present()` says it is there, under a lock so parallel
/// tests install it once; `apt-get update` first only when the package lists lack it.
pub fn apt_install(package: &str, present: impl Fn() -> bool) {
    let _lock = file_lock(&format!("apt-{package}"));
    if present() {
        return;
    }
    let apt_get = |args: &[&str]| {
        let mut command = Command::new("apt-get");
        command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        command
    };
    let install = ["install", "-y", "--no-install-recommends", package];
    let started = Instant::now();
    if apt_get(&install).output().is_ok_and(|o| o.status.success()) {
        eprintln!("apt-get install {package}: {:.1?}", started.elapsed());
        return;
    }
    run(apt_get(&["update"]), "apt-get update");
    run(apt_get(&install), &format!("apt-get install {package}"));
}
