//! The audit of login attempts the throttle refused. Such an attempt costs
//! its sender nothing (it is refused before any hash), so one client could
//! otherwise write thousands of audit rows a second. Each client address
//! (an IPv6 client as its /64) gets at most one `login_throttled` event a
//! minute: its first refused attempt of the minute, whose `attempts` says
//! how many refused attempts it stands for (itself and those counted since
//! the client's last event). Attempts counted but not yet written are
//! written by [`ThrottledLog::sweep`], which the server's upkeep runs every
//! minute. The clients followed at once are bounded; past the bound, every
//! new client shares one entry (address `::`), so a flood from many
//! addresses still writes at most one event a minute more.

use super::model::client_key;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};

/// How long one event covers a client's refused attempts.
const WINDOW_MS: i64 = 60_000;
/// Clients followed at once; past it they share one entry.
const MAX_CLIENTS: usize = 4096;
/// The entry of the clients past [`MAX_CLIENTS`].
const SHARED: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// An event to write: `attempts` refused attempts of `client`, the first of
/// which gave `username`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Throttled {
    /// The client address (its /64 for IPv6; `::` for the shared entry).
    pub client: IpAddr,
    /// The username of the window's first attempt.
    pub username: String,
    /// How many refused attempts the event stands for.
    pub attempts: u64,
}

#[derive(Debug)]
struct Window {
    started_ms: i64,
    username: String,
    /// Attempts refused since the client's last event.
    unwritten: u64,
}

/// Refused attempts per client, in the current minute.
#[derive(Debug, Default)]
pub(super) struct ThrottledLog {
    clients: Mutex<HashMap<IpAddr, Window>>,
}

impl ThrottledLog {
    /// Counts one refused attempt of `ip` for `username` at `now_ms`; the
    /// event to write now, if this attempt opens a new minute for its
    /// client.
    pub(super) fn refused(&self, ip: IpAddr, username: &str, now_ms: i64) -> Option<Throttled> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = client_key(ip);
        if !clients.contains_key(&key) && clients.len() >= MAX_CLIENTS {
            key = SHARED;
        }
        let window = clients.entry(key).or_insert_with(|| Window {
            started_ms: i64::MIN,
            username: String::new(),
            unwritten: 0,
        });
        window.unwritten += 1;
        if now_ms.saturating_sub(window.started_ms) < WINDOW_MS {
            return None;
        }
        window.started_ms = now_ms;
        window.username = username.chars().take(150).collect();
        let event = Throttled {
            client: key,
            username: window.username.clone(),
            attempts: window.unwritten,
        };
        window.unwritten = 0;
        Some(event)
    }

    /// The events for attempts counted in minutes that are over, and the
    /// clients whose minute is over forgotten.
    pub(super) fn sweep(&self, now_ms: i64) -> Vec<Throttled> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let mut events = Vec::new();
        clients.retain(|client, window| {
            if now_ms.saturating_sub(window.started_ms) < WINDOW_MS {
                return true;
            }
            if window.unwritten > 0 {
                events.push(Throttled {
                    client: *client,
                    username: std::mem::take(&mut window.username),
                    attempts: window.unwritten,
                });
            }
            false
        });
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_flood_from_one_client_is_one_event_a_minute_and_every_attempt_is_counted() {
        let log = ThrottledLog::default();
        let first = log.refused(ip("10.0.0.1"), "alice", 0).unwrap();
        assert_eq!(first.attempts, 1);
        for i in 1..10_000 {
            assert_eq!(log.refused(ip("10.0.0.1"), "bob", i), None);
        }
        // Another client has its own minute.
        assert!(log.refused(ip("10.0.0.2"), "carol", 5).is_some());
        // The next minute's first attempt stands for the 9,999 before it too.
        let next = log.refused(ip("10.0.0.1"), "dave", 60_000).unwrap();
        assert_eq!((next.username.as_str(), next.attempts), ("dave", 10_000));
        for i in 0..5 {
            assert_eq!(log.refused(ip("10.0.0.1"), "eve", 60_001 + i), None);
        }
        // The upkeep writes what was counted once the minute is over.
        assert_eq!(log.sweep(100_000), vec![]);
        let swept = log.sweep(120_000);
        assert_eq!(
            swept,
            vec![Throttled {
                client: ip("10.0.0.1"),
                username: "dave".into(),
                attempts: 5
            }]
        );
        assert!(log.clients.lock().unwrap().is_empty());
    }

    #[test]
    fn clients_are_bounded_and_an_ipv6_client_is_its_slash_64() {
        let log = ThrottledLog::default();
        assert!(log.refused(ip("2001:db8::1"), "a", 0).is_some());
        assert_eq!(log.refused(ip("2001:db8::2"), "a", 1), None);
        for i in 0..(MAX_CLIENTS as u32 + 100) {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            log.refused(addr, "x", 2);
        }
        let clients = log.clients.lock().unwrap();
        assert_eq!(clients.len(), MAX_CLIENTS + 1);
        assert_eq!(clients[&SHARED].unwritten, 100);
    }
}
