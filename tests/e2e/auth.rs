use std::time::Duration;

use previewd_e2e::TestServer;
use serde_json::{json, Value};

/// Missing, malformed, foreign-signed and expired tokens get 401 with a JSON body; health needs
/// none.
#[tokio::test]
async fn bearer_token_rules() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/generations", server.base);

    let none = http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["code"], "missing_token", "{body:?}");

    let foreign = previewd::auth::Authenticator::new(b"another secret")
        .user_token("alice", Duration::from_secs(60));
    let expired = server.state.auth.user_token("alice", Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (token, code) in [
        ("garbage", "invalid_token"),
        (foreign.as_str(), "invalid_token"),
        (expired.as_str(), "token_expired"),
    ] {
        let response = http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{body:?}");
        assert!(body["message"].as_str().is_some());
    }

    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}

/// Another user's generation is 404 on every path, exactly like one that does not exist, and
/// lists stay per user.
#[tokio::test]
async fn other_users_see_nothing() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let mallory = server.client("mallory");
    let generation = alice.upload_fixture("crash-at-import").await;

    let paths = [
        format!("/generations/{generation}"),
        format!("/generations/{generation}/preview/status"),
        format!("/generations/{generation}/preview/endpoints"),
        format!("/generations/{generation}/preview/config"),
        format!("/generations/{generation}/preview/logs/stream"),
    ];
    for path in &paths {
        let answer = mallory.get(path).await;
        assert_eq!(answer.status, 404, "{path}: {:?}", answer.body);
        assert_eq!(answer.body["code"], "generation_not_found");
        let unknown = mallory.get(&path.replace(&generation, "no-such-id")).await;
        assert_eq!(
            unknown.body,
            json!({"code": "generation_not_found", "message": "no generation with id no-such-id"})
        );
    }
    assert_eq!(
        mallory
            .post(
                &format!("/generations/{generation}/preview/launch"),
                json!({})
            )
            .await
            .status,
        404
    );
    assert_eq!(
        mallory
            .delete(&format!("/generations/{generation}"))
            .await
            .status,
        404
    );
    assert_eq!(mallory.get("/generations").await.body, json!([]));
    assert_eq!(
        alice
            .get("/generations")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        alice
            .get(&format!("/generations/{generation}"))
            .await
            .status,
        200,
        "still there"
    );
    server.stop().await;
}

/// The envelope needs the launch's session token: missing or another preview's is 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_needs_the_session_token() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let generation = alice.upload_fixture("fastapi-app").await;
    let launched = alice.launch_wait(&generation).await;
    assert_eq!(launched.status, 200, "{:?}", launched.body);
    let url = format!(
        "{}/api/v1/generations/{generation}/preview/request",
        server.base
    );
    let send = |session: Option<String>| {
        let http = alice.http.clone();
        let url = url.clone();
        let token = alice.token.clone();
        async move {
            let mut request = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"path": "/"}));
            if let Some(session) = session {
                request = request.header("X-Preview-Session", session);
            }
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = send(None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("missing_session_token"))
    );
    let other =
        server
            .state
            .auth
            .session_token("alice", "another-preview", Duration::from_secs(60));
    let (status, body) = send(Some(other.token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_session_token"))
    );
    let (status, body) = send(Some(
        launched.body["session_token"].as_str().unwrap().into(),
    ))
    .await;
    assert_eq!((status, body["status"].as_u64()), (200, Some(200)));
    alice.stop_preview(&generation).await;
    server.stop().await;
}
