use std::io::Write;

use previewd_e2e::{dir_entries, TestServer};
use serde_json::{json, Value};

/// Every refused upload answers a JSON 4xx naming its rule, and writes nothing: no generation,
/// no files, no staging leftovers.
async fn assert_refused(
    server: &TestServer,
    answer: previewd_e2e::Answer,
    status: u16,
    code: &str,
) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(answer.body["code"], code, "{:?}", answer.body);
    assert!(answer.body["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(dir_entries(&server.data_dir().join("generations")).is_empty());
    assert!(dir_entries(&server.data_dir().join("staging")).is_empty());
    assert_eq!(
        server.client("alice").get("/generations").await.body,
        json!([])
    );
}

fn tar_gz(entries: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>)) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    entries(&mut builder);
    builder.into_inner().unwrap().finish().unwrap()
}

/// A tar header for `name` written raw, so the builder's own checks do not stop `..`.
fn raw_header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    let bytes = name.as_bytes();
    header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    header
}

/// Traversal in JSON, tar and zip; absolute paths; links; a gzip bomb; garbage; malformed JSON.
#[tokio::test]
async fn hostile_uploads_are_refused_and_write_nothing() {
    let server = TestServer::start_with(|c| {
        c.max_total_bytes = 5 * 1024 * 1024;
        c.max_file_bytes = 1024 * 1024;
    })
    .await;
    let alice = server.client("alice");

    let traversal = json!({"name": "x", "files": [
        {"path": "main.py", "content": "ok"},
        {"path": "../../etc/cron.d/evil", "content": "boom"}
    ]});
    assert_refused(
        &server,
        alice.post("/generations", traversal).await,
        400,
        "path_traversal",
    )
    .await;
    let absolute = json!({"name": "x", "files": [{"path": "/etc/passwd", "content": "x"}]});
    assert_refused(
        &server,
        alice.post("/generations", absolute).await,
        400,
        "absolute_path",
    )
    .await;

    let tar = tar_gz(|b| {
        let header = raw_header("../evil.py", tar::EntryType::Regular, 4);
        b.append(&header, &b"evil"[..]).unwrap();
    });
    assert_refused(
        &server,
        alice.upload_archive(tar, "application/gzip").await,
        400,
        "path_traversal",
    )
    .await;

    let symlink = tar_gz(|b| {
        let mut header = raw_header("link", tar::EntryType::Symlink, 0);
        header.set_link_name("/etc/passwd").unwrap();
        header.set_cksum();
        b.append(&header, std::io::empty()).unwrap();
    });
    assert_refused(
        &server,
        alice.upload_archive(symlink, "application/gzip").await,
        400,
        "link_not_allowed",
    )
    .await;

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("../../evil.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"evil").unwrap();
    let zip = zip.finish().unwrap().into_inner();
    assert_refused(
        &server,
        alice.upload_archive(zip, "application/zip").await,
        400,
        "path_traversal",
    )
    .await;

    // 64 MiB of zeros in one file: a few KiB compressed, over every limit unpacked.
    let bomb = tar_gz(|b| {
        let header = raw_header("zeros.bin", tar::EntryType::Regular, 64 << 20);
        b.append(&header, std::io::Read::take(std::io::repeat(0), 64 << 20))
            .unwrap();
    });
    assert!(
        bomb.len() < 1 << 20,
        "the bomb is small compressed: {}",
        bomb.len()
    );
    let answer = alice.upload_archive(bomb, "application/gzip").await;
    assert_refused(&server, answer, 413, "file_too_large").await;

    let garbage = alice
        .upload_archive(
            b"\x1f\x8b this is not really gzip".to_vec(),
            "application/gzip",
        )
        .await;
    assert_refused(&server, garbage, 400, "invalid_archive").await;
    let unknown = alice
        .upload_archive(b"plain text".to_vec(), "application/octet-stream")
        .await;
    assert_refused(&server, unknown, 400, "unsupported_archive").await;

    let huge =
        json!({"name": "x", "files": [{"path": "big.txt", "content": "x".repeat(24 << 20)}]});
    assert_refused(
        &server,
        alice.post("/generations", huge).await,
        413,
        "request_too_large",
    )
    .await;

    let malformed = alice
        .http
        .post(format!("{}/api/v1/generations", alice.base))
        .bearer_auth(&alice.token)
        .header("content-type", "application/json")
        .body("{\"name\": \"x\", \"files\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["code"], "bad_request", "{body:?}");
    server.stop().await;
}

/// Good archives are accepted: a tar.gz and a zip wrapped in one top-level folder are unpacked
/// without it and detected.
#[tokio::test]
async fn archives_with_a_top_level_folder_are_unwrapped() {
    let server = TestServer::start().await;
    let alice = server.client("alice");
    let main = b"from fastapi import FastAPI\napp = FastAPI()\n";

    let tar = tar_gz(|b| {
        let mut header = tar::Header::new_gnu();
        header.set_size(main.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        b.append_data(&mut header, "project-main/main.py", &main[..])
            .unwrap();
    });
    let answer = alice.upload_archive(tar, "application/gzip").await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(answer.body["framework"], "fastapi");
    assert_eq!(answer.body["file_count"], 1);
    let id = answer.body["id"].as_str().unwrap();
    assert!(server
        .data_dir()
        .join("generations")
        .join(id)
        .join("main.py")
        .is_file());

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(
        "project-main/main.py",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(main).unwrap();
    let zip = zip.finish().unwrap().into_inner();
    let answer = alice.upload_archive(zip, "application/zip").await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(answer.body["framework"], "fastapi");
    server.stop().await;
}
