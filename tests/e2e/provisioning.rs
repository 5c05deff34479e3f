use previewd_e2e::TestServer;

/// Two launches of projects with the same requirements, at the same moment, on an empty cache:
/// the virtualenv is built once, the other launch waits for it and reuses it, and both run.
/// Without `uv` on PATH this also installs uv into the cache once, as on a fresh machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_launches_build_one_virtualenv() {
    let cache = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(|c| c.cache_dir = Some(cache.path().to_path_buf())).await;
    let (alice, bob) = (server.client("alice"), server.client("bob"));
    let (first, second) = (
        alice.upload_fixture("fastapi-app").await,
        bob.upload_fixture("fastapi-app").await,
    );
    let (a, b) = tokio::join!(alice.launch_wait(&first), bob.launch_wait(&second));
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(b.status, 200, "{:?}", b.body);

    let system_lines = |generation: &str| -> Vec<String> {
        server
            .state
            .logs
            .read_after(generation, 0, 10_000)
            .unwrap()
            .into_iter()
            .filter(|l| l.stream == previewd::log_store::LogStream::System)
            .map(|l| l.into_line().line)
            .collect()
    };
    let all: Vec<String> = system_lines(&first)
        .into_iter()
        .chain(system_lines(&second))
        .collect();
    let built = all
        .iter()
        .filter(|l| l.contains("not cached yet, building it"))
        .count();
    let waited_or_reused = all
        .iter()
        .filter(|l| {
            l.contains("waiting for the build of the same env")
                || l.contains("reusing cached virtualenv")
        })
        .count();
    assert_eq!(built, 1, "one build: {all:#?}");
    assert!(
        waited_or_reused >= 1,
        "the other launch waited and reused: {all:#?}"
    );
    assert!(
        all.iter().any(|l| l.starts_with("virtualenv ready in")),
        "{all:#?}"
    );
    alice.stop_preview(&first).await;
    bob.stop_preview(&second).await;
    server.stop().await;
}
