//! A generation's log lines as tests compare them: from the stream or from the history, which
//! write every field the same way.

use serde_json::Value;

use crate::Client;

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub seq: u64,
    pub ts: String,
    pub stream: String,
    pub line: String,
}

impl LogLine {
    /// A line from its JSON (an SSE `data:` or an entry of the history's `lines`).
    pub fn from_json(value: &Value) -> LogLine {
        let text = |field: &str| {
            value[field]
                .as_str()
                .unwrap_or_else(|| panic!("no `{field}` in {value}"))
                .to_string()
        };
        LogLine {
            seq: value["seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("no seq in {value}")),
            ts: text("ts"),
            stream: text("stream"),
            line: text("line"),
        }
    }
}

/// Every stored line of a generation, paged through the history endpoint.
pub async fn history(client: &Client, generation: &str) -> Vec<LogLine> {
    let (mut lines, mut after) = (Vec::new(), 0);
    loop {
        let page = client
            .get(&format!(
                "/generations/{generation}/preview/logs?after={after}&limit=5000"
            ))
            .await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        lines.extend(
            page.body["lines"]
                .as_array()
                .expect("lines")
                .iter()
                .map(LogLine::from_json),
        );
        if page.body["has_more"] != true {
            return lines;
        }
        let next = page.body["next_after"].as_u64().expect("next_after");
        assert!(next > after, "next_after moves on from {after}: {next}");
        after = next;
    }
}
