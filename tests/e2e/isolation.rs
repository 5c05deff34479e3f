//! Isolation against a real app that tries to look around: under namespaces a preview reads and
//! writes its own project and `/tmp`, but cannot read another preview's files or previewd's
//! secret and database, cannot write the system, sees only its own processes and has no
//! capabilities to undo any of it. With `--isolation none` the same app sees everything, which
//! shows the first test checks something real.

use previewd::supervisor::isolation::IsolationMode;
use previewd_e2e::fixture_runs;
use previewd_e2e::{Client, TestServer};
use serde_json::{json, Value};

/// An app that reports what it can read, write and see (the warm path's tests use it too).
pub(crate) const SNOOP: &str = r#"
import ctypes
import os
import tempfile

from flask import Flask, request

app = Flask(__name__)


def attempt(action):
    try:
        return {"ok": True, "value": action()}
    except Exception as err:
        return {"ok": False, "error": f"{type(err).__name__}: {err}"}


@app.get("/read")
def read():
    return attempt(lambda: open(request.args["path"]).read())


@app.get("/write")
def write():
    def go():
        with open(request.args["path"], "w") as f:
            f.write("written")
        return True

    return attempt(go)


@app.get("/self")
def me():
    status = open("/proc/self/status").read()
    cap_eff = next(l.split()[1] for l in status.splitlines() if l.startswith("CapEff"))
    libc = ctypes.CDLL(None, use_errno=True)
    umount = libc.umount2(b"/tmp", 2)
    return {
        "pid": os.getpid(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "cap_eff": cap_eff,
        "umount": umount,
        "project_root": os.environ["PREVIEWD_PROJECT_ROOT"],
        "home": os.path.expanduser("~"),
        "cwd": os.getcwd(),
        "tmpdir": os.environ.get("TMPDIR"),
        "tempfile": tempfile.gettempdir(),
    }
"#;

/// A preview that is running.
struct Launched {
    generation: String,
    session: String,
}

async fn launch(client: &Client, name: &str, files: &[(&str, &str)]) -> Launched {
    let generation = client.upload_files(name, files).await;
    let answer = client.launch_wait(&generation).await;
    assert_eq!(answer.status, 200, "{name}: {:?}", answer.body);
    Launched {
        session: answer.body["session_token"].as_str().expect("token").into(),
        generation,
    }
}

/// `GET path?query` on the preview, its JSON body.
async fn call(client: &Client, preview: &Launched, path: &str, query: Value) -> Value {
    fixture_runs::app_json(client, &preview.generation, &preview.session, path, query).await
}

async fn read(client: &Client, preview: &Launched, path: &str) -> Value {
    call(client, preview, "/read", json!({ "path": path })).await
}

async fn write(client: &Client, preview: &Launched, path: &str) -> Value {
    call(client, preview, "/write", json!({ "path": path })).await
}

/// Two previews side by side and the paths each must not reach.
struct Neighbours {
    server: TestServer,
    client: Client,
    victim: Launched,
    snoop: Launched,
}

impl Neighbours {
    async fn start(mode: IsolationMode) -> Neighbours {
        let server = TestServer::start_with(|c| {
            c.isolation = Some(mode);
            // The secret in its file in the data dir, where previewd keeps one by default.
            c.jwt_secret = None;
        })
        .await;
        let client = server.client("alice");
        let victim = launch(
            &client,
            "victim",
            &[("app.py", SNOOP), ("secret.txt", "the victim's secret")],
        )
        .await;
        let snoop = launch(&client, "snoop", &[("app.py", SNOOP)]).await;
        Neighbours {
            server,
            client,
            victim,
            snoop,
        }
    }

    fn victim_secret(&self) -> String {
        let dir = self.server.data_dir().join("generations");
        format!("{}/{}/secret.txt", dir.display(), self.victim.generation)
    }

    fn jwt_secret(&self) -> String {
        self.server
            .data_dir()
            .join("jwt-secret")
            .display()
            .to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_sees_only_its_own_files_and_processes() {
    let n = Neighbours::start(IsolationMode::Namespaces).await;
    let (client, snoop) = (&n.client, &n.snoop);

    // The victim reads its own file: the path is right.
    let own = read(client, &n.victim, &n.victim_secret()).await;
    assert_eq!(own["value"], "the victim's secret", "{own}");
    for hidden in [n.victim_secret(), n.jwt_secret()] {
        let answer = read(client, snoop, &hidden).await;
        assert_eq!(answer["ok"], false, "{hidden} was readable: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("FileNotFoundError"),
            "{answer}"
        );
    }
    let db = n.server.data_dir().join("db").join("conf");
    assert_eq!(read(client, snoop, db.to_str().unwrap()).await["ok"], false);

    // Its own project and /tmp are writable; the system is not.
    let me = call(client, snoop, "/self", json!({})).await;
    let project = me["project_root"].as_str().unwrap();
    assert_eq!(
        write(client, snoop, &format!("{project}/out.txt")).await["ok"],
        true
    );
    assert_eq!(write(client, snoop, "/tmp/out.txt").await["ok"], true);
    let home = me["home"].as_str().unwrap();
    assert_eq!(
        write(client, snoop, &format!("{home}/.cache")).await["ok"],
        true
    );
    for system in ["/etc/previewd-test", "/usr/previewd-test"] {
        let answer = write(client, snoop, system).await;
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("Read-only file system"),
            "{system}: {answer}"
        );
    }
    // The neighbour's /tmp is its own.
    let theirs = read(client, &n.victim, "/tmp/out.txt").await;
    assert_eq!(theirs["ok"], false, "{theirs}");

    // Its own PID namespace (the namespace's init, then the app), no capabilities, and so no
    // way to unmount what hides the rest.
    assert_eq!(me["pid"], 2, "{me}");
    assert_eq!(me["pids"], json!([1, 2]), "{me}");
    assert_eq!(me["cap_eff"], "0000000000000000", "{me}");
    assert_eq!(me["umount"], -1, "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_isolation_the_same_app_sees_everything() {
    let n = Neighbours::start(IsolationMode::None).await;
    let answer = read(&n.client, &n.snoop, &n.victim_secret()).await;
    assert_eq!(answer["value"], "the victim's secret", "{answer}");
    let answer = read(&n.client, &n.snoop, &n.jwt_secret()).await;
    assert_eq!(answer["ok"], true, "{answer}");
}
