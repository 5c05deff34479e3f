//! The pool of ports previews listen on. A port is handed out only after binding it proves it
//! free, is held by a [`PortLease`] for the preview's whole life, and goes back to the pool when
//! the lease is dropped, on every exit path. Ports are handed out round-robin so a port just
//! released is not reused at once.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};

/// No port of the range is free.
#[derive(Debug, thiserror::Error)]
#[error("no free port in {first}-{last}: every one is in use by a preview or another program")]
pub struct PortsExhausted {
    pub first: u16,
    pub last: u16,
}

/// The system's range of ephemeral ports, when it can be read.
fn ephemeral_ports() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut bounds = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    Some((bounds.next()??, bounds.next()??))
}

#[derive(Debug)]
struct State {
    in_use: HashSet<u16>,
    next: u16,
}

/// The port pool.
#[derive(Debug)]
pub struct PortPool {
    range: RangeInclusive<u16>,
    state: Mutex<State>,
}

/// A port held for one preview; released when dropped.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    pool: Arc<PortPool>,
}

impl PortLease {
    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_use
            .remove(&self.port);
    }
}

impl PortPool {
    /// A pool over `range`. Warns when the range overlaps the ports the system hands out for
    /// outgoing connections: a port free when leased can then be taken by a connection before
    /// the app binds it.
    pub fn new(range: RangeInclusive<u16>) -> Arc<PortPool> {
        if let Some((low, high)) = ephemeral_ports() {
            if *range.start() <= high && low <= *range.end() {
                tracing::warn!(
                    "the preview port range {}-{} overlaps the system's ephemeral ports {low}-{high} \
                     (net.ipv4.ip_local_port_range): an app may now and then fail to bind its port; \
                     choose a range outside it with --port-range",
                    range.start(),
                    range.end()
                );
            }
        }
        Arc::new(PortPool {
            state: Mutex::new(State {
                in_use: HashSet::new(),
                next: *range.start(),
            }),
            range,
        })
    }

    /// Leases the next free port.
    pub fn acquire(self: &Arc<Self>) -> Result<PortLease, PortsExhausted> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (first, last) = (*self.range.start(), *self.range.end());
        let count = usize::from(last - first) + 1;
        for _ in 0..count {
            let port = state.next;
            state.next = if port >= last { first } else { port + 1 };
            if !state.in_use.contains(&port) && is_free(port) {
                state.in_use.insert(port);
                return Ok(PortLease {
                    port,
                    pool: self.clone(),
                });
            }
        }
        Err(PortsExhausted { first, last })
    }

    /// Ports currently leased.
    pub fn leased(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_use
            .len()
    }
}

/// Whether nothing listens on `port` of the loopback (or wildcard) address.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leases are distinct, skip ports something else listens on, and come back when dropped.
    #[test]
    fn lease_skip_and_release() {
        // A bound port whose next one is free (other tests bind ports too).
        let (_blocker, busy) = std::iter::repeat_with(|| {
            let blocker = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let port = blocker.local_addr().unwrap().port();
            (blocker, port)
        })
        .find(|(_, port)| *port < u16::MAX && is_free(port + 1))
        .unwrap();
        let pool = PortPool::new(busy..=busy.saturating_add(1));
        let lease = pool.acquire().unwrap();
        assert_ne!(lease.port(), busy, "a bound port is never leased");
        assert!(pool.acquire().is_err(), "the only free port is leased");
        drop(lease);
        assert_eq!(pool.leased(), 0);
        assert!(pool.acquire().is_ok());
    }
}
