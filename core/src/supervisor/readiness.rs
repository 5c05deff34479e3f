//! The readiness probe: an app is ready once it answers HTTP on its port, whatever the status.
//! Polled every [`POLL_INTERVAL`], so a preview is reported running within milliseconds of
//! binding rather than on the next tick of a slow timer.

use std::time::Duration;

/// Time between two probes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(15);
/// How long one probe waits for an answer once connected.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes one app.
pub struct Probe {
    client: reqwest::Client,
    port: u16,
    url: String,
}

impl Probe {
    /// A probe of `GET http://127.0.0.1:{port}{path}`.
    pub fn new(port: u16, path: &str) -> Probe {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(ANSWER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Probe {
            client,
            port,
            url: format!("http://127.0.0.1:{port}{path}"),
        }
    }

    /// The HTTP status the app answers with now, if it answers.
    pub async fn check(&self) -> Option<u16> {
        // A refused connect is the common case while the app starts: find it cheaply.
        tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let response = self.client.get(&self.url).send().await.ok()?;
        Some(response.status().as_u16())
    }

    /// Probes until the app answers; returns its status. Never returns if it never answers: the
    /// caller races this against the deadline and the process's exit.
    pub async fn wait_ready(&self) -> u16 {
        loop {
            if let Some(status) = self.check().await {
                return status;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}
