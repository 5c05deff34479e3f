//! The OpenAPI spec is a product (the frontend's client is generated from it), so the committed
//! copy in `openapi/openapi.json` must be exactly what the server serves.

use std::path::Path;

/// The committed spec equals the served one; regenerate it with the command in the message.
#[test]
fn committed_spec_matches_the_served_one() {
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    let served = previewd::api::service().spec();
    let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    assert!(
        parse(&committed).is_some() && parse(&committed) == parse(&served),
        "openapi/openapi.json differs from the spec the server serves; regenerate it with:\n\n    cargo run -p previewd -- openapi > openapi/openapi.json\n"
    );
}
