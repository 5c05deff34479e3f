//! Installing what tests need on a fresh machine, once: locks held across test processes (and
//! nextest's), set-up commands that must succeed, Debian packages, and the clean-up of servers
//! the tests start when their process ends.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, Once};
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

/// Shell commands run when this process exits normally ([`clean_up_at_exit`]).
static AT_EXIT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Runs `script` (a shell command stopping a server and removing its folder `root`) when this
/// process ends: from an `atexit` handler on a normal exit, and from a watchdog in a session of
/// its own (so a Ctrl-C to the test's process group spares it) on any other end, SIGKILL
/// included, polling this process every second. `what` names the server in a warning.
pub fn clean_up_at_exit(what: &str, root: &Path, script: String) {
    extern "C" fn run_at_exit() {
        let scripts = AT_EXIT.lock().map(|s| s.clone()).unwrap_or_default();
        for script in scripts {
            let _ = Command::new("sh")
                .args(["-c", &script])
                .current_dir("/")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    static REGISTER: Once = Once::new();
    AT_EXIT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(script.clone());
    // SAFETY: registers a plain function without arguments, which is all atexit needs.
    REGISTER.call_once(|| unsafe {
        nix::libc::atexit(run_at_exit);
    });

    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         [ -d '{root}' ] && {{ {script}; }}",
        pid = std::process::id(),
        root = root.display()
    );
    let spawned = Command::new("setsid")
        .args(["sh", "-c", &watchdog])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(err) = spawned {
        eprintln!("no watchdog for {what} (it stops at a normal exit): {err}");
    }
}

/// A random hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("/dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A port of `ports` nothing listens on now, starting at a place of this process's own (so
/// parallel test processes rarely try the same one) and moving on by `attempt`.
pub fn free_port(ports: std::ops::Range<u16>, attempt: u16) -> u16 {
    let span = ports.end - ports.start;
    let first = (std::process::id() as u16).wrapping_mul(37) % span;
    (0..span)
        .map(|i| ports.start + (first + attempt * 7 + i) % span)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .unwrap_or_else(|| panic!("no free port in {ports:?}"))
}
