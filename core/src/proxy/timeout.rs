//! The proxy's timeout: an app has hung when, for `request_timeout`, it has neither answered
//! (sent its response head) nor read any more of the request body. Counting the body's
//! progress lets a large upload from a slow client take as long as it takes while an app that
//! stops reading is still caught; once the head has arrived there is no limit, so downloads
//! and event streams run as long as the app sends them.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};

use crate::supervisor::activity::Activity;

/// A request body that records each chunk the app's connection takes from it.
pub struct Tracked<B> {
    inner: B,
    progress: Arc<Activity>,
}

impl<B> Tracked<B> {
    /// `inner`, reporting to `progress`.
    pub fn new(inner: B, progress: Arc<Activity>) -> Tracked<B> {
        Tracked { inner, progress }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &poll {
            self.progress.touch();
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Waits for `answer` until `timeout` has passed without `progress`; `None` when it has.
pub async fn unless_stalled<F: Future>(
    answer: F,
    progress: &Activity,
    timeout: Duration,
) -> Option<F::Output> {
    let mut answer = pin!(answer);
    loop {
        let left = timeout.checked_sub(progress.idle_for())?;
        if left.is_zero() {
            return None;
        }
        if let Ok(output) = tokio::time::timeout(left, &mut answer).await {
            return Some(output);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Progress pushes the deadline back; without it the wait ends.
    #[tokio::test]
    async fn progress_extends_the_wait() {
        let progress = Arc::new(Activity::default());
        let toucher = progress.clone();
        let answer = async move {
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                toucher.touch();
            }
            "answered"
        };
        let result = unless_stalled(answer, &progress, Duration::from_millis(500)).await;
        assert_eq!(result, Some("answered"));

        let stalled = std::future::pending::<()>();
        assert_eq!(
            unless_stalled(stalled, &progress, Duration::from_millis(50)).await,
            None
        );
    }
}
