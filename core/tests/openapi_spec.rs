//! The OpenAPI spec is a product (the frontend's client is generated from it), so the committed
//! copy in `openapi/openapi.json` must be exactly what the server serves, and the spec itself
//! must be complete enough to generate a client from and to read: every operation named (as a
//! method), tagged, summarised and described; every parameter and schema field described; every
//! schema with an example that is valid against it; every error answer the typed JSON error
//! body; both security schemes declared; the log stream's events documented.

use std::path::Path;

use serde_json::{Map, Value};

/// The command that rewrites the committed spec.
const REGENERATE: &str = "cargo run -q -p previewd -- openapi > openapi/openapi.json";
/// The schema of every error answer.
const ERROR_SCHEMA: &str = "#/components/schemas/ErrorBody";
/// The header carrying a preview's session token.
const SESSION_HEADER: &str = "X-Preview-Session";

/// The spec as `previewd openapi` prints it (and the server serves it, plus a newline).
fn served() -> String {
    previewd::api::service().spec()
}

fn spec() -> Value {
    serde_json::from_str(&served()).expect("the spec is JSON")
}

/// Every operation: (method, path, operation).
fn operations(spec: &Value) -> Vec<(String, String, &Value)> {
    let paths = spec["paths"].as_object().expect("paths");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            operations.push((method.to_uppercase(), path.clone(), operation));
        }
    }
    operations
}

/// Every component schema, by name.
fn schemas(spec: &Value) -> &Map<String, Value> {
    spec["components"]["schemas"].as_object().expect("schemas")
}

fn non_empty(value: &Value) -> bool {
    value.as_str().is_some_and(|text| !text.trim().is_empty())
}

/// Fails with every problem found, one per line.
fn assert_none(problems: Vec<String>, what: &str) {
    assert!(
        problems.is_empty(),
        "{what}:\n  {}\n(the spec comes from the poem-openapi code in core/src/api; regenerate the \
         committed copy afterwards with `{REGENERATE}`)",
        problems.join("\n  ")
    );
}

/// The committed spec is byte for byte what `previewd openapi` prints and the server serves;
/// the failure gives the command that regenerates it.
#[test]
fn committed_spec_matches_the_served_one() {
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    let expected = format!("{}\n", served());
    if committed == expected {
        return;
    }
    let first_difference = committed
        .lines()
        .zip(expected.lines())
        .enumerate()
        .find(|(_, (old, new))| old != new)
        .map(|(at, (old, new))| {
            format!(
                "first difference at line {}:\n  committed: {old}\n  served:    {new}",
                at + 1
            )
        })
        .unwrap_or_else(|| {
            format!(
                "the committed spec has {} lines, the served one {}",
                committed.lines().count(),
                expected.lines().count()
            )
        });
    panic!(
        "openapi/openapi.json differs from the spec the server serves; regenerate it, from the \
         workspace root, with:\n\n    {REGENERATE}\n\n{first_difference}"
    );
}

/// Every operation has a camelCase operationId (a client's method name), unique, at least one
/// declared tag, a summary and a description.
#[test]
fn every_operation_is_named_tagged_and_described() {
    let spec = spec();
    let declared_tags: Vec<&str> = spec["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|tag| tag["name"].as_str())
        .collect();
    let mut problems = Vec::new();
    let mut ids = Vec::new();
    for (method, path, operation) in operations(&spec) {
        let at = format!("{method} {path}");
        match operation["operationId"].as_str() {
            Some(id) if is_camel_case(id) => {
                if ids.contains(&id) {
                    problems.push(format!("{at}: operationId `{id}` is used twice"));
                }
                ids.push(id);
            }
            Some(id) => problems.push(format!("{at}: operationId `{id}` is not camelCase")),
            None => problems.push(format!("{at}: no operationId")),
        }
        let tags = operation["tags"].as_array().cloned().unwrap_or_default();
        if tags.is_empty() {
            problems.push(format!("{at}: no tag"));
        }
        for tag in tags {
            if !tag.as_str().is_some_and(|tag| declared_tags.contains(&tag)) {
                problems.push(format!("{at}: tag {tag} is not declared"));
            }
        }
        for field in ["summary", "description"] {
            if !non_empty(&operation[field]) {
                problems.push(format!("{at}: no {field}"));
            }
        }
    }
    assert_none(
        problems,
        "operations lacking a name, tag, summary or description",
    );
}

/// `getGeneration`, not `get_generation` or `GetGeneration`.
fn is_camel_case(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Every parameter has a description, and its example (when it has one) is valid.
#[test]
fn every_parameter_is_described() {
    let spec = spec();
    let mut problems = Vec::new();
    for (method, path, operation) in operations(&spec) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let at = format!("{method} {path}: parameter {}", parameter["name"]);
            if !non_empty(&parameter["description"]) {
                problems.push(format!("{at} has no description"));
            }
            if let Some(example) = parameter["schema"].get("example") {
                check_value(&spec, example, &parameter["schema"], &at, &mut problems);
            }
        }
    }
    assert_none(problems, "parameters lacking a description");
}

/// Every 4xx and 5xx answer of every operation is described and has a JSON body of the error
/// schema; every other answer is described too.
#[test]
fn every_error_answer_is_a_typed_json_body() {
    let spec = spec();
    let mut problems = Vec::new();
    for (method, path, operation) in operations(&spec) {
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let at = format!("{method} {path} {status}");
            if !non_empty(&response["description"]) {
                problems.push(format!("{at}: no description"));
            }
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let content = response["content"].as_object().cloned().unwrap_or_default();
            let json: Vec<&Value> = content
                .iter()
                .filter(|(media_type, _)| media_type.starts_with("application/json"))
                .map(|(_, media)| media)
                .collect();
            if json.is_empty() || content.len() != json.len() {
                problems.push(format!(
                    "{at}: the body is not JSON only (media types: {:?})",
                    content.keys().collect::<Vec<_>>()
                ));
            }
            for media in json {
                if media["schema"]["$ref"] != ERROR_SCHEMA {
                    problems.push(format!("{at}: the body is not {ERROR_SCHEMA}"));
                }
            }
        }
    }
    assert_none(problems, "error answers without the typed JSON error body");
}

/// Every schema has a description; an object's every property has a description and a value in
/// the schema's example; any other schema is an enumeration or has an example of its own.
#[test]
fn every_schema_field_is_described_with_an_example() {
    let spec = spec();
    let mut problems = Vec::new();
    for (name, schema) in schemas(&spec) {
        if !non_empty(&schema["description"]) {
            problems.push(format!("{name}: no description"));
        }
        let Some(properties) = schema["properties"].as_object() else {
            if schema.get("enum").is_none() && schema.get("example").is_none() {
                problems.push(format!("{name}: neither an enumeration nor an example"));
            }
            continue;
        };
        let example = schema.get("example").and_then(Value::as_object);
        if example.is_none() {
            problems.push(format!("{name}: no example"));
        }
        for (property, definition) in properties {
            if !non_empty(&definition["description"]) {
                problems.push(format!("{name}.{property}: no description"));
            }
            let in_example = example.is_some_and(|example| example.contains_key(property));
            if !in_example && definition.get("example").is_none() {
                problems.push(format!("{name}.{property}: no example"));
            }
        }
    }
    assert_none(problems, "schemas lacking descriptions or examples");
}

/// Every example in the spec (schemas' and properties') is valid against its schema, so that
/// clients, docs and schemathesis (which sends them) get real values.
#[test]
fn examples_match_their_schemas() {
    let spec = spec();
    let mut problems = Vec::new();
    for (name, schema) in schemas(&spec) {
        if let Some(example) = schema.get("example") {
            check_value(&spec, example, schema, name, &mut problems);
        }
        for (property, definition) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(example) = definition.get("example") {
                let at = format!("{name}.{property}");
                check_value(&spec, example, definition, &at, &mut problems);
            }
        }
    }
    assert_none(problems, "examples that do not match their schemas");
}

/// The bearer JWT and the session-token header are declared; every `/api/v1` operation needs
/// the bearer token, and the one taking `X-Preview-Session` needs both at once (one
/// requirement naming both, not two alternatives); health and metrics need nothing.
#[test]
fn security_schemes_are_declared_and_required() {
    let spec = spec();
    let schemes = spec["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let bearer = schemes
        .iter()
        .find(|(_, scheme)| scheme["type"] == "http" && scheme["scheme"] == "bearer")
        .map(|(name, scheme)| (name.clone(), scheme.clone()))
        .expect("a bearer security scheme");
    assert_eq!(bearer.1["bearerFormat"], "JWT", "{bearer:?}");
    let session = schemes
        .iter()
        .find(|(_, scheme)| {
            scheme["type"] == "apiKey"
                && scheme["in"] == "header"
                && scheme["name"] == SESSION_HEADER
        })
        .map(|(name, _)| name.clone())
        .expect("an apiKey security scheme for the X-Preview-Session header");
    for (name, scheme) in schemes {
        assert!(
            non_empty(&scheme["description"]),
            "{name} has no description"
        );
    }

    let mut problems = Vec::new();
    let mut session_operations = 0;
    for (method, path, operation) in operations(&spec) {
        let at = format!("{method} {path}");
        let security = operation["security"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let requirements: Vec<Vec<&str>> = security
            .iter()
            .map(|requirement| {
                let names = requirement.as_object().expect("a requirement");
                names.keys().map(String::as_str).collect()
            })
            .collect();
        let takes_session = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|parameter| parameter["name"] == SESSION_HEADER && parameter["in"] == "header");
        let expected: Vec<Vec<&str>> = if !path.starts_with("/api/v1/") {
            vec![]
        } else if takes_session {
            session_operations += 1;
            vec![vec![bearer.0.as_str(), session.as_str()]]
        } else {
            vec![vec![bearer.0.as_str()]]
        };
        if sorted(requirements.clone()) != sorted(expected.clone()) {
            problems.push(format!(
                "{at}: security {requirements:?}, expected {expected:?}"
            ));
        }
    }
    assert_none(problems, "operations with the wrong security");
    assert!(
        session_operations > 0,
        "no operation takes {SESSION_HEADER}"
    );
}

/// Requirements with their scheme names sorted, to compare them.
fn sorted(mut requirements: Vec<Vec<&str>>) -> Vec<Vec<&str>> {
    requirements
        .iter_mut()
        .for_each(|names| names.sort_unstable());
    requirements
}

/// The log stream documents its events: a `text/event-stream` answer whose schema is one event
/// (`event` `log` or `status`, `data`, `id`), and a description of `event: log`,
/// `event: status`, `id:` and resuming, `retry:` and the heartbeat.
#[test]
fn log_stream_documents_its_events() {
    let spec = spec();
    let (_, path, operation) = operations(&spec)
        .into_iter()
        .find(|(_, _, operation)| operation["operationId"] == "streamPreviewLogs")
        .expect("the log stream operation");
    let answer = &operation["responses"]["200"];
    let schema = &answer["content"]["text/event-stream"]["schema"];
    let schema = resolve(&spec, schema).expect("the event schema");
    for property in ["event", "data", "id"] {
        assert!(
            schema["properties"].get(property).is_some(),
            "{path}: the event schema has no `{property}`"
        );
    }
    let kinds = resolve(&spec, &schema["properties"]["event"]).expect("the event kinds");
    assert_eq!(
        kinds["enum"],
        serde_json::json!(["log", "status"]),
        "{kinds}"
    );
    let description = operation["description"].as_str().unwrap_or_default();
    for needle in [
        "event: log",
        "event: status",
        "id:",
        "Last-Event-ID",
        "retry: ",
        "heartbeat",
        "LogEvent",
        "StatusEvent",
    ] {
        assert!(
            description.contains(needle),
            "{path}: the description does not mention `{needle}`"
        );
    }
    assert!(
        schemas(&spec).contains_key("LogEvent"),
        "the `log` events' data schema is not in the spec"
    );
}

/// `schema` with its `$ref`s, and an `allOf` of one `$ref` (poem-openapi's way of describing a
/// referenced field), followed.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/components/schemas/")?;
        return resolve(spec, schemas(spec).get(name)?);
    }
    match schema["allOf"].as_array().map(Vec::as_slice) {
        Some([first, ..]) if first.get("$ref").is_some() => resolve(spec, first),
        _ => Some(schema),
    }
}

/// Checks `value` against `schema` (the parts of JSON Schema the spec uses), adding a problem
/// for each mismatch.
fn check_value(spec: &Value, value: &Value, schema: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let target = reference
            .strip_prefix("#/components/schemas/")
            .and_then(|name| schemas(spec).get(name));
        match target {
            Some(target) => check_value(spec, value, target, at, problems),
            None => problems.push(format!("{at}: unknown reference {reference}")),
        }
        return;
    }
    if value.is_null() {
        if schema["nullable"] != true {
            problems.push(format!("{at}: null, but not nullable"));
        }
        return;
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        check_value(spec, value, part, at, problems);
    }
    for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(choices) = schema[keyword].as_array() {
            let matching = choices
                .iter()
                .filter(|choice| {
                    let mut mismatches = Vec::new();
                    check_value(spec, value, choice, at, &mut mismatches);
                    mismatches.is_empty()
                })
                .count();
            if matching == 0 || (exactly_one && matching > 1) {
                problems.push(format!("{at}: {matching} of the {keyword} choices match"));
            }
        }
    }
    if let Some(choices) = schema["enum"].as_array() {
        if !choices.contains(value) {
            problems.push(format!("{at}: {value} is not one of {choices:?}"));
        }
    }
    let format = schema["format"].as_str().unwrap_or_default();
    match schema["type"].as_str() {
        Some("string") => match value.as_str() {
            Some(text) if format == "date-time" => {
                if chrono::DateTime::parse_from_rfc3339(text).is_err() {
                    problems.push(format!("{at}: `{text}` is not an RFC 3339 time"));
                }
            }
            Some(_) => {}
            None => problems.push(format!("{at}: {value} is not a string")),
        },
        Some("integer") => {
            let fits = match format {
                "uint16" => value.as_u64().is_some_and(|n| n <= u64::from(u16::MAX)),
                "uint32" => value.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)),
                "uint64" => value.as_u64().is_some(),
                "int32" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                _ => value.as_i64().is_some() || value.as_u64().is_some(),
            };
            if !fits {
                problems.push(format!(
                    "{at}: {value} is not an integer of format `{format}`"
                ));
            }
        }
        Some("number") if !value.is_number() => {
            problems.push(format!("{at}: {value} is not a number"));
        }
        Some("boolean") if !value.is_boolean() => {
            problems.push(format!("{at}: {value} is not a boolean"));
        }
        Some("array") => match value.as_array() {
            Some(items) => {
                for (index, item) in items.iter().enumerate() {
                    let at = format!("{at}[{index}]");
                    check_value(spec, item, &schema["items"], &at, problems);
                }
            }
            None => problems.push(format!("{at}: {value} is not an array")),
        },
        Some("object") => match value.as_object() {
            Some(object) => check_object(spec, object, schema, at, problems),
            None => problems.push(format!("{at}: {value} is not an object")),
        },
        _ => {}
    }
    if let Some(n) = value.as_f64() {
        let below = schema["minimum"].as_f64().is_some_and(|min| n < min);
        let above = schema["maximum"].as_f64().is_some_and(|max| n > max);
        if below || above {
            problems.push(format!("{at}: {value} is out of its bounds"));
        }
    }
}

fn check_object(
    spec: &Value,
    object: &Map<String, Value>,
    schema: &Value,
    at: &str,
    problems: &mut Vec<String>,
) {
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap_or_default();
        if !object.contains_key(name) {
            problems.push(format!("{at}: required `{name}` is missing"));
        }
    }
    let properties = schema["properties"].as_object();
    for (name, field) in object {
        let at = format!("{at}.{name}");
        match properties.and_then(|properties| properties.get(name)) {
            Some(definition) => check_value(spec, field, definition, &at, problems),
            None => match schema.get("additionalProperties") {
                Some(additional) if additional.is_object() => {
                    check_value(spec, field, additional, &at, problems)
                }
                Some(Value::Bool(true)) => {}
                _ if properties.is_none() => {}
                _ => problems.push(format!("{at}: not a property of the schema")),
            },
        }
    }
}

/// The checker itself finds what it should, so a green run means something.
#[test]
fn the_example_checker_catches_mismatches() {
    let spec = spec();
    let mut problems = Vec::new();
    let status = serde_json::json!({"$ref": "#/components/schemas/Status"});
    check_value(
        &spec,
        &serde_json::json!("running"),
        &status,
        "ok",
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:?}");
    let launched = serde_json::json!({"$ref": "#/components/schemas/Launched"});
    let cases = [
        (serde_json::json!("sleeping"), &status),
        (serde_json::json!({"preview_id": 1}), &launched),
        (serde_json::json!({"port": 70000}), &launched),
    ];
    for (value, schema) in cases {
        let mut problems = Vec::new();
        check_value(&spec, &value, schema, "bad", &mut problems);
        assert!(!problems.is_empty(), "{value} passed against {schema}");
    }
}
