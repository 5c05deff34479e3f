//! A project's env file as the app's defaults: an app that reads a required setting at import
//! (`os.environ["SECRET_KEY"]`) runs from its `.env.example`; the launch's `env` and previewd's
//! own variables win; empty and start-up variables, those naming a server beside the app and
//! production modes stay unset; values never reach the log.

use previewd_e2e::fixture_runs::app_json;
use previewd_e2e::log_lines::history;
use previewd_e2e::TestServer;
use serde_json::json;

use crate::LAUNCH_LIMIT;

/// A Flask app that dies at import without SECRET_KEY, and shows what it was given.
const APP: &str = r#"import os

from flask import Flask

SECRET_KEY = os.environ["SECRET_KEY"]
app = Flask(__name__)


@app.get("/env")
def env():
    return {
        "secret_key": SECRET_KEY,
        "greeting": os.environ.get("GREETING"),
        "port": os.environ.get("PORT"),
        "empty_set": "EMPTY_ONE" in os.environ,
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "redis_set": "REDIS_URL" in os.environ,
    }
"#;

/// What the project documents, as developers write it.
const ENV_EXAMPLE: &str = "# Copy to .env and fill in\n\
                           SECRET_KEY=dev-secret-change-me\n\
                           export GREETING=\"hello from the example\" # shown on /\n\
                           PORT=9999\n\
                           PYTHONPATH=/nowhere\n\
                           REDIS_URL=redis://localhost:6379/0\n\
                           NODE_ENV=production\n\
                           EMPTY_ONE=\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_example_gives_the_app_its_required_settings() {
    let server = TestServer::start().await;
    let client = server.client("env-file");
    let generation = client
        .upload_files(
            "env-file",
            &[
                ("app.py", APP),
                ("requirements.txt", "flask>=3,<4\n"),
                (".env.example", ENV_EXAMPLE),
            ],
        )
        .await;

    let config = client
        .get(&format!("/generations/{generation}/preview/config"))
        .await;
    assert_eq!(config.status, 200, "{:?}", config.body);
    assert_eq!(
        config.body["env_file"],
        json!({
            "file": ".env.example",
            "variables": ["SECRET_KEY", "GREETING"],
            "left_out": ["PYTHONPATH", "REDIS_URL", "NODE_ENV"],
        }),
        "{:?}",
        config.body
    );

    let launched = tokio::time::timeout(
        LAUNCH_LIMIT,
        client.post(
            &format!("/generations/{generation}/preview/launch?wait=true"),
            json!({"env": {"GREETING": "the launch's"}}),
        ),
    )
    .await
    .expect("launch within the limit");
    let log = history(&client, &generation).await;
    let log_text: Vec<String> = log
        .iter()
        .map(|l| format!("[{}] {}", l.stream, l.line))
        .collect();
    assert_eq!(
        launched.body["status"],
        "running",
        "{:?}\n{}",
        launched.body,
        log_text.join("\n")
    );
    let session = launched.body["session_token"].as_str().expect("session");
    let port = launched.body["port"].as_u64().expect("port");

    let env = app_json(&client, &generation, session, "/env", json!({})).await;
    assert_eq!(env["secret_key"], "dev-secret-change-me", "{env}");
    assert_eq!(
        env["greeting"], "the launch's",
        "the launch's env wins: {env}"
    );
    assert_eq!(env["port"], port.to_string(), "previewd's PORT wins: {env}");
    assert_eq!(env["empty_set"], false, "an empty value stays unset: {env}");
    assert_ne!(env["pythonpath"], "/nowhere", "{env}");
    assert_eq!(env["redis_set"], false, "no server beside the app: {env}");

    assert!(
        log_text
            .iter()
            .any(|l| l == "[system] env: 1 variable from .env.example as defaults: SECRET_KEY"),
        "the log names what was taken:\n{}",
        log_text.join("\n")
    );
    assert!(
        log_text.iter().any(|l| l
            == "[system] env: NODE_ENV in .env.example left out: they run the app as in \
                production, where a preview is a development run (the launch's env can set them)"),
        "the log says why each is left out:\n{}",
        log_text.join("\n")
    );
    assert!(
        log_text.iter().all(|l| !l.contains("dev-secret-change-me")),
        "values stay out of the log:\n{}",
        log_text.join("\n")
    );
    server.stop().await;
}
