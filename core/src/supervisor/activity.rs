//! When a preview was last really used, for the idle timeout.
//!
//! Use is what a person or a client does with the app: a request through the proxy, an envelope
//! call, a keepalive, and having its log stream open. Status polls do not count, so a forgotten
//! tab polling `/status` does not keep a preview alive forever.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A preview's last use, cheap to update from every proxied request.
#[derive(Debug)]
pub struct Activity {
    origin: Instant,
    /// Milliseconds from `origin` to the last use.
    last_ms: AtomicU64,
}

impl Default for Activity {
    /// Activity starting now (a launch counts as use).
    fn default() -> Activity {
        Activity {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Activity {
    /// Records use now.
    pub fn touch(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// How long since the last use.
    pub fn idle_for(&self) -> Duration {
        let last = self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Instant::now().saturating_duration_since(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_resets_idle_time() {
        let activity = Activity::default();
        std::thread::sleep(Duration::from_millis(20));
        assert!(activity.idle_for() >= Duration::from_millis(20));
        activity.touch();
        assert!(activity.idle_for() < Duration::from_millis(20));
    }
}
