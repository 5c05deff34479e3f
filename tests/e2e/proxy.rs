//! The transparent proxy at `/preview/{preview_id}/` against real apps (FastAPI on uvicorn,
//! Flask on waitress): bodies streamed both ways, WebSocket echo, the app's own Swagger UI
//! under the prefix, the session token from header, `?token=` and cookie (and never shown to
//! the app), and every refusal in the API's JSON error shape.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use previewd_e2e::{Client, TestServer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Generous bound for what must happen eventually, so a loaded machine slows a test down
/// instead of failing it.
const EVENTUALLY: Duration = Duration::from_secs(120);
/// One MiB, the unit of the streaming tests.
const MIB: usize = 1 << 20;

const FASTAPI_APP: &str = r#"
import asyncio, hashlib
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

app = FastAPI(title="proxy test")
received = {"bytes": 0}
release = asyncio.Event()

@app.get("/items/{item_id}")
def read_item(item_id: int):
    """Read one item."""
    return {"id": item_id}

@app.post("/upload")
async def upload(request: Request):
    received["bytes"] = 0
    digest = hashlib.sha256()
    async for chunk in request.stream():
        digest.update(chunk)
        received["bytes"] += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": received["bytes"]}

@app.get("/received")
def how_much():
    return received

@app.get("/download")
def download(mb: int):
    block = bytes(range(256)) * 4096
    return StreamingResponse((block for _ in range(mb)), media_type="application/octet-stream")

@app.get("/drip")
async def drip():
    async def body():
        yield b"first\n"
        await release.wait()
        yield b"second\n"
    return StreamingResponse(body(), media_type="text/plain")

@app.post("/release")
def let_go():
    release.set()
    return {}

@app.api_route("/echo/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def echo(request: Request, rest: str):
    return {
        "method": request.method,
        "raw_path": request.scope["raw_path"].decode(),
        "root_path": request.scope.get("root_path"),
        "query": request.url.query,
        "url": str(request.url),
        "headers": dict(request.headers),
        "cookies": request.cookies,
        "body": (await request.body()).decode(),
    }

@app.get("/hang")
async def hang():
    await asyncio.sleep(3600)

@app.websocket("/ws")
async def ws(socket: WebSocket):
    await socket.accept()
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await socket.send_text("echo: " + message["text"])
            elif message.get("bytes") is not None:
                await socket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass
"#;

const FLASK_APP: &str = r#"
from flask import Flask, redirect, request, url_for

app = Flask(__name__)

@app.get("/items/<int:item_id>")
def item(item_id):
    return {"id": item_id}

@app.get("/links")
def links():
    return {
        "relative": url_for("item", item_id=3),
        "external": url_for("item", item_id=3, _external=True),
        "script_root": request.script_root,
    }

@app.get("/go")
def go():
    return redirect(url_for("item", item_id=4))
"#;

/// A launched preview.
struct Preview {
    generation: String,
    id: String,
    session: String,
    port: u16,
    /// `http://previewd/preview/<id>`, without the final slash.
    url: String,
}

async fn launch(server: &TestServer, client: &Client, files: &[(&str, &str)]) -> Preview {
    let generation = client.upload_files("proxy", files).await;
    let launched = client.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let id = launched.body["preview_id"]
        .as_str()
        .expect("id")
        .to_string();
    Preview {
        url: format!("{}/preview/{id}", server.base),
        session: launched.body["session_token"]
            .as_str()
            .expect("session")
            .to_string(),
        port: launched.body["port"].as_u64().expect("port") as u16,
        generation,
        id,
    }
}

/// A client that shows redirects instead of following them, like a test wants.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client")
}

async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// `(status, code)` of a refusal, checking its shape.
async fn refusal(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body = json(response).await;
    assert!(body["message"].as_str().is_some(), "{body}");
    (status, body["code"].as_str().expect("code").to_string())
}

/// The bytes `/download?mb=N` sends: one MiB block, N times.
fn download_sha256(mb: usize) -> String {
    let block: Vec<u8> = (0..=255u8).cycle().take(MIB).collect();
    let mut digest = Sha256::new();
    for _ in 0..mb {
        digest.update(&block);
    }
    hex(&digest.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 50 MB upload and a 100 MB download go through streamed: the app sees the upload's first
/// MiB before the rest is sent, the client reads the first chunk of an answer the app has not
/// finished, and both bodies arrive whole (sha256).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_both_ways() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let preview = launch(&server, &alice, &[("main.py", FASTAPI_APP)]).await;
    let http = http();

    // Upload, chunked: 1 MiB, wait until the app has it, then the other 49.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let chunk: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let upload = tokio::spawn({
        let request = http
            .post(format!("{}/upload", preview.url))
            .header("X-Preview-Session", &preview.session)
            .body(reqwest::Body::wrap_stream(futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) },
            )));
        async move { request.send().await.expect("upload") }
    });
    tx.send(Ok(chunk.clone())).await.expect("first MiB");
    tokio::time::timeout(EVENTUALLY, async {
        loop {
            let seen = http
                .get(format!("{}/received", preview.url))
                .header("X-Preview-Session", &preview.session)
                .send()
                .await
                .expect("progress");
            if json(seen).await["bytes"].as_u64().unwrap_or(0) >= MIB as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the app sees the first MiB while the rest is unsent");
    for _ in 1..50 {
        tx.send(Ok(chunk.clone())).await.expect("more");
    }
    drop(tx);
    let answer = upload.await.expect("upload task");
    assert_eq!(answer.status(), 200);
    let mut expected = Sha256::new();
    for _ in 0..50 {
        expected.update(&chunk);
    }
    let answer = json(answer).await;
    assert_eq!(answer["bytes"], 50 * MIB);
    assert_eq!(answer["sha256"], hex(&expected.finalize()));

    // Download: the first chunk comes before the app has finished its answer.
    let mut drip = http
        .get(format!("{}/drip", preview.url))
        .header("X-Preview-Session", &preview.session)
        .send()
        .await
        .expect("drip");
    assert_eq!(drip.status(), 200);
    let first = tokio::time::timeout(EVENTUALLY, drip.chunk())
        .await
        .expect("first chunk")
        .expect("read")
        .expect("a chunk");
    assert_eq!(&first[..], b"first\n");
    let released = http
        .post(format!("{}/release", preview.url))
        .header("X-Preview-Session", &preview.session)
        .send()
        .await
        .expect("release");
    assert_eq!(released.status(), 200);
    assert_eq!(&drip.bytes().await.expect("rest")[..], b"second\n");

    // And 100 MB whole.
    let download = http
        .get(format!("{}/download?mb=100", preview.url))
        .header("X-Preview-Session", &preview.session)
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), 200);
    let mut stream = download.bytes_stream();
    let mut digest = Sha256::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        total += chunk.len();
        digest.update(&chunk);
    }
    assert_eq!(total, 100 * MIB);
    assert_eq!(hex(&digest.finalize()), download_sha256(100));

    alice.stop_preview(&preview.generation).await;
    server.stop().await;
}

/// A WebSocket opened with `?token=` (as a browser would) echoes text and binary messages
/// through the proxy; without a token the handshake is refused with 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let preview = launch(&server, &alice, &[("main.py", FASTAPI_APP)]).await;
    let ws_url = preview.url.replacen("http://", "ws://", 1);

    let (mut socket, response) =
        tokio_tungstenite::connect_async(format!("{ws_url}/ws?token={}", preview.session))
            .await
            .expect("websocket through the proxy");
    assert_eq!(response.status(), 101);
    socket
        .send(Message::text("hello"))
        .await
        .expect("send text");
    let echoed = tokio::time::timeout(EVENTUALLY, socket.next())
        .await
        .expect("an answer")
        .expect("a message")
        .expect("no error");
    assert_eq!(echoed, Message::text("echo: hello"));
    let payload: Vec<u8> = (0..MIB).map(|i| (i % 253) as u8).collect();
    socket
        .send(Message::binary(payload.clone()))
        .await
        .expect("send binary");
    let echoed = tokio::time::timeout(EVENTUALLY, socket.next())
        .await
        .expect("an answer")
        .expect("a message")
        .expect("no error");
    assert_eq!(echoed.into_data().as_ref(), payload.as_slice());
    socket.close(None).await.expect("close");

    // The session header works for a WebSocket too; no token at all does not.
    let mut request = format!("{ws_url}/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "X-Preview-Session",
        preview.session.parse().expect("header value"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket with the header");
    socket.send(Message::text("again")).await.expect("send");
    let echoed = socket.next().await.expect("message").expect("no error");
    assert_eq!(echoed, Message::text("echo: again"));
    match tokio_tungstenite::connect_async(format!("{ws_url}/ws")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected a 401, got {other:?}"),
    }

    alice.stop_preview(&preview.generation).await;
    server.stop().await;
}

/// The app's own Swagger UI works under the prefix the way a browser uses it: `/docs?token=`
/// sets the cookie, the page points at the prefixed `openapi.json`, whose `servers` is the
/// prefix, and "Try it out" (the server URL + the path, cookie only) reaches the app. Straight
/// to the app's port, without the proxy's headers, nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastapi_docs_under_the_prefix() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let preview = launch(&server, &alice, &[("main.py", FASTAPI_APP)]).await;
    let http = http();
    let prefix = format!("/preview/{}", preview.id);

    let docs = http
        .get(format!("{}/docs?token={}", preview.url, preview.session))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status(), 200);
    let cookie = docs
        .headers()
        .get("set-cookie")
        .expect("the session cookie")
        .to_str()
        .expect("text")
        .to_string();
    let pair = cookie.split(';').next().expect("name=value").to_string();
    let html = docs.text().await.expect("html");
    assert!(
        html.contains(&format!("'{prefix}/openapi.json'")),
        "Swagger UI loads the prefixed spec: {html}"
    );

    let spec = http
        .get(format!("{}{prefix}/openapi.json", server.base))
        .header("cookie", &pair)
        .send()
        .await
        .expect("spec");
    assert_eq!(spec.status(), 200);
    let spec = json(spec).await;
    let server_url = spec["servers"][0]["url"].as_str().expect("servers");
    assert_eq!(server_url, prefix);
    assert!(
        spec["paths"]["/items/{item_id}"]["get"].is_object(),
        "{spec}"
    );

    let tried = http
        .get(format!("{}{server_url}/items/7", server.base))
        .header("cookie", &pair)
        .send()
        .await
        .expect("try it out");
    assert_eq!(tried.status(), 200);
    assert_eq!(json(tried).await, serde_json::json!({"id": 7}));

    let direct = format!("http://127.0.0.1:{}", preview.port);
    let spec = json(
        http.get(format!("{direct}/openapi.json"))
            .send()
            .await
            .expect("direct spec"),
    )
    .await;
    assert!(spec.get("servers").is_none(), "{spec}");
    let html = http
        .get(format!("{direct}/docs"))
        .send()
        .await
        .expect("direct docs")
        .text()
        .await
        .expect("html");
    assert!(html.contains("'/openapi.json'"), "{html}");

    alice.stop_preview(&preview.generation).await;
    server.stop().await;
}

/// `?token=` authorises the request, leaves the URL before the app sees it and sets the
/// cookie; the cookie alone then works and is cut out of the app's `Cookie` header while the
/// app's own cookies and `Authorization` pass. The path reaches the app raw, any method and
/// body pass, the forwarded headers describe the browser's request and `Host` is the browser's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_token_never_reaches_the_app() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let preview = launch(&server, &alice, &[("main.py", FASTAPI_APP)]).await;
    let http = http();
    let prefix = format!("/preview/{}", preview.id);
    let host = server.base.trim_start_matches("http://").to_string();

    let first = http
        .get(format!(
            "{}/echo/a%2Fb/c?x=1&token={}&y=%20two",
            preview.url, preview.session
        ))
        .header("cookie", "theme=dark")
        .header("authorization", "Bearer the-apps-own")
        .send()
        .await
        .expect("first request");
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.headers()["set-cookie"],
        format!(
            "previewd_session={}; Path={prefix}/; HttpOnly; SameSite=Lax",
            preview.session
        )
    );
    let seen = json(first).await;
    assert_eq!(seen["query"], "x=1&y=%20two");
    assert_eq!(seen["raw_path"], format!("{prefix}/echo/a%2Fb/c"));
    assert_eq!(seen["root_path"], prefix);
    assert_eq!(seen["cookies"], serde_json::json!({"theme": "dark"}));
    let headers = &seen["headers"];
    assert_eq!(headers["authorization"], "Bearer the-apps-own");
    assert_eq!(headers["host"], host);
    assert_eq!(headers["x-forwarded-host"], host);
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-prefix"], prefix);
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(
        seen["url"],
        format!("http://{host}{prefix}/echo/a/b/c?x=1&y=%20two")
    );
    assert!(!seen.to_string().contains(&preview.session), "{seen}");

    let cookie_only = http
        .put(format!("{}/echo/put", preview.url))
        .header(
            "cookie",
            format!("theme=dark; previewd_session={}", preview.session),
        )
        .body("a body")
        .send()
        .await
        .expect("cookie only");
    assert_eq!(cookie_only.status(), 200);
    assert!(cookie_only.headers().get("set-cookie").is_none());
    let seen = json(cookie_only).await;
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["body"], "a body");
    assert_eq!(seen["cookies"], serde_json::json!({"theme": "dark"}));
    assert!(!seen.to_string().contains(&preview.session), "{seen}");

    let header_only = http
        .delete(format!("{}/echo/x", preview.url))
        .header("X-Preview-Session", &preview.session)
        .send()
        .await
        .expect("header only");
    let seen = json(header_only).await;
    assert_eq!(seen["method"], "DELETE");
    assert!(seen["headers"].get("x-preview-session").is_none(), "{seen}");

    // The app's root is the prefix with its slash (this app has no `/`: FastAPI's own 404).
    let root = http
        .get(format!("{}/", preview.url))
        .header("X-Preview-Session", &preview.session)
        .send()
        .await
        .expect("root");
    assert_eq!(root.status(), 404);
    assert_eq!(json(root).await, serde_json::json!({"detail": "Not Found"}));

    // No slash after the id: a redirect that keeps the query, the token included.
    let bare = http
        .get(format!("{}?a=1&token={}", preview.url, preview.session))
        .send()
        .await
        .expect("bare prefix");
    assert_eq!(bare.status(), 308);
    assert_eq!(
        bare.headers()["location"],
        format!("{prefix}/?a=1&token={}", preview.session)
    );

    // The app's own log never held the token either.
    let lines = alice.last_log_lines(&preview.generation, 50).await;
    assert!(
        lines
            .iter()
            .any(|l| l["line"].as_str().unwrap_or("").contains("/echo/")),
        "the app logged the requests: {lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l["line"].as_str().unwrap_or("").contains(&preview.session)),
        "{lines:?}"
    );

    alice.stop_preview(&preview.generation).await;
    server.stop().await;
}

/// Every refusal is JSON: no token, a malformed, expired or another preview's token, a user's
/// bearer token are 401; an app that hangs is 504 after the timeout; a stopped preview is 503
/// with its status; a preview whose generation was deleted is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    let server = TestServer::start_with(|c| c.request_timeout = Duration::from_secs(2)).await;
    let alice = server.client("alice");
    let preview = launch(&server, &alice, &[("main.py", FASTAPI_APP)]).await;
    let http = http();
    let item = format!("{}/items/1", preview.url);
    let with = |token: &str| http.get(&item).header("X-Preview-Session", token).send();

    let auth = &server.state.auth;
    let other = auth.session_token("alice", "another-preview", Duration::from_secs(60));
    let expired = auth.session_token("alice", &preview.id, Duration::ZERO);
    let user = auth.user_token("alice", Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let none = http.get(&item).send().await.expect("no token");
    assert_eq!(
        refusal(none).await,
        (401, "missing_session_token".to_string())
    );
    for (token, code) in [
        ("garbage", "invalid_session_token"),
        (other.token.as_str(), "invalid_session_token"),
        (user.as_str(), "invalid_session_token"),
        (expired.token.as_str(), "session_expired"),
    ] {
        let response = with(token).await.expect("request");
        assert_eq!(refusal(response).await, (401, code.to_string()), "{token}");
    }
    let ok = with(&preview.session).await.expect("good token");
    assert_eq!(ok.status(), 200);

    let hung = http
        .get(format!("{}/hang", preview.url))
        .header("X-Preview-Session", &preview.session)
        .send()
        .await
        .expect("hang");
    assert_eq!(refusal(hung).await, (504, "preview_timeout".to_string()));

    alice.stop_preview(&preview.generation).await;
    let stopped = with(&preview.session).await.expect("stopped");
    let status = stopped.status().as_u16();
    let body = json(stopped).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("preview_not_running"))
    );
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("stopped"),
        "{body}"
    );

    let deleted = alice
        .delete(&format!("/generations/{}", preview.generation))
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let gone = with(&preview.session).await.expect("gone");
    assert_eq!(refusal(gone).await, (404, "preview_not_found".to_string()));
    server.stop().await;
}

/// A Flask app under the prefix builds its links with it (`url_for`, relative and external,
/// and its redirects), while straight to its port it builds them at the root as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_links_carry_the_prefix() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let preview = launch(&server, &alice, &[("app.py", FLASK_APP)]).await;
    let http = http();
    let prefix = format!("/preview/{}", preview.id);

    let links = http
        .get(format!("{}/links", preview.url))
        .header("X-Preview-Session", &preview.session)
        .send()
        .await
        .expect("links");
    assert_eq!(links.status(), 200);
    let links = json(links).await;
    assert_eq!(links["relative"], format!("{prefix}/items/3"));
    assert_eq!(
        links["external"],
        format!("{}{prefix}/items/3", server.base)
    );
    assert_eq!(links["script_root"], prefix);

    let go = http
        .get(format!("{}/go", preview.url))
        .header("X-Preview-Session", &preview.session)
        .send()
        .await
        .expect("redirect");
    assert_eq!(go.status(), 302);
    let location = go.headers()["location"].to_str().expect("location");
    assert!(
        location.ends_with(&format!("{prefix}/items/4")),
        "{location}"
    );

    let direct = json(
        http.get(format!("http://127.0.0.1:{}/links", preview.port))
            .send()
            .await
            .expect("direct"),
    )
    .await;
    assert_eq!(direct["relative"], "/items/3");
    assert_eq!(direct["script_root"], "");

    alice.stop_preview(&preview.generation).await;
    server.stop().await;
}
