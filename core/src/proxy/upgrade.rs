//! Protocol switches (WebSocket) through the proxy. A request asking for one (`Connection:
//! upgrade` and an `Upgrade` header) is forwarded with both; when the app answers
//! `101 Switching Protocols`, the client gets that 101 with the app's headers
//! (`Sec-WebSocket-Accept`, the chosen subprotocol and extensions), and once both sides have
//! switched their connections are spliced: bytes are copied both ways, unread and unchanged,
//! until either side closes. When the app answers anything else, that answer is forwarded as
//! an ordinary response and nothing is switched.
//!
//! Traffic on a spliced connection counts as use of the preview, for the idle timeout.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use poem::http::header::{CONNECTION, UPGRADE};
use poem::http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::supervisor::Supervisor;

/// How often traffic on a spliced connection is reported as use of the preview, at most.
const TOUCH_EVERY: Duration = Duration::from_secs(1);

/// Whether a request asks to switch protocols.
pub fn requested(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Splices the client's connection to the app's once both have switched, in a task of its own.
pub fn splice(
    client: poem::OnUpgrade,
    app: hyper::upgrade::OnUpgrade,
    supervisor: Supervisor,
    preview_id: String,
) {
    tokio::spawn(async move {
        let (client, app) = match tokio::join!(client, app) {
            (Ok(client), Ok(app)) => (client, app),
            (Err(err), _) => {
                tracing::debug!(%preview_id, "the client did not switch protocols: {err}");
                return;
            }
            (_, Err(err)) => {
                tracing::debug!(%preview_id, "the app did not switch protocols: {err}");
                return;
            }
        };
        let mut client = InUse {
            io: client,
            supervisor,
            preview_id,
            touched: Instant::now(),
        };
        let mut app = TokioIo::new(app);
        if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut app).await {
            tracing::debug!(preview_id = %client.preview_id, "switched connection ended: {err}");
        }
    });
}

/// The client's side of a spliced connection, reporting its traffic as use of the preview.
struct InUse<T> {
    io: T,
    supervisor: Supervisor,
    preview_id: String,
    touched: Instant,
}

impl<T> InUse<T> {
    fn used(&mut self) {
        if self.touched.elapsed() >= TOUCH_EVERY {
            self.touched = Instant::now();
            self.supervisor.touch(&self.preview_id);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for InUse<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.used();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for InUse<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.used();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    /// `Connection` may list several tokens, in any case.
    #[test]
    fn upgrade_requests() {
        let mut headers = HeaderMap::new();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!requested(&headers));
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(requested(&headers));
        headers.remove(UPGRADE);
        assert!(!requested(&headers));
    }
}
