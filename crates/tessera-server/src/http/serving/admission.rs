//! Who gets a connection slot. Two rules keep one client from holding the
//! server: no client address holds more than `max_connections_per_client`
//! connections (an IPv6 client is its /64, which one host is routinely
//! given whole; a trusted proxy, which speaks for many clients, is exempt),
//! and when all `max_connections` slots are taken, a new connection is let
//! in by closing the one that has waited longest without asking anything:
//! a kept-alive connection between requests first, then one that has sent
//! nothing since it opened. Only when every connection is busy answering
//! (or half-way through a request head) does a new one wait for a slot.

use crate::authority::client_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a connection admitted by closing an idle one waits for that one
/// to let go of its slot (it only has to notice and drop its socket).
const SHED_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// How often a connection waiting while every slot is busy looks again for
/// one that has gone idle (finishing a request frees no slot, so nothing
/// would wake it).
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_millis(250);

/// What a connection reports about itself when the server is full and
/// looks for one to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Waiting {
    /// Kept alive between requests since this instant: the first to go.
    BetweenRequests(Instant),
    /// Open since this instant and not a byte sent yet.
    Silent(Instant),
}

/// How the table asks an open connection what it is doing.
pub trait Probe: Send + Sync + 'static {
    /// `Some` when the connection could be closed without cutting a
    /// request short, with how long it has waited; `None` while it is busy.
    fn waiting(&self) -> Option<Waiting>;
}

struct Entry {
    client: Option<IpAddr>,
    probe: Arc<dyn Probe>,
    close: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
}

/// The connection slots and who holds them; shared by the accept loop and
/// every connection (through its [`Slot`]).
#[derive(Clone)]
pub struct Admission {
    table: Arc<Mutex<Table>>,
    freed: Arc<Notify>,
    max: usize,
    per_client: usize,
    exempt: Arc<[IpAddr]>,
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its client already holds its share of the slots.
    ClientFull,
}

/// A connection's place in the table: released when dropped. `closing`
/// resolves when the table wants the connection closed to admit another.
pub struct Slot {
    id: u64,
    admission: Admission,
    close: Arc<Notify>,
}

impl Slot {
    /// Resolves once this connection is chosen to make room for another.
    pub async fn closing(&self) {
        self.close.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.release(self.id);
    }
}

impl Admission {
    /// A table of `max` slots (at least 1), at most `per_client` of them
    /// (at least 1) to one client, except clients in `exempt`.
    pub fn new(max: usize, per_client: usize, exempt: &[IpAddr]) -> Self {
        Self {
            table: Arc::default(),
            freed: Arc::new(Notify::new()),
            max: max.max(1),
            per_client: per_client.max(1),
            exempt: exempt.iter().copied().map(client_key).collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `peer`, reporting through `probe`: at once
    /// when a slot is free; else by closing the connection that has waited
    /// longest, and then when its slot is given back; else when any slot is
    /// given back. Refused at once when its client holds its share.
    pub async fn admit(&self, peer: IpAddr, probe: Arc<dyn Probe>) -> Result<Slot, Refused> {
        let client = client_key(peer);
        let client = (!self.exempt.contains(&client)).then_some(client);
        let close = Arc::new(Notify::new());
        let mut shed_at: Option<Instant> = None;
        loop {
            // Registered before looking, so that a slot given back between
            // the look and the wait is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut table = self.lock();
                if let Some(client) = client
                    && table.per_client.get(&client).copied().unwrap_or(0) >= self.per_client
                {
                    return Err(Refused::ClientFull);
                }
                if table.open.len() < self.max {
                    return Ok(self.take(&mut table, client, probe, close));
                }
                if shed_at.is_none_or(|at| at.elapsed() >= SHED_WAIT)
                    && let Some(victim) = Self::longest_waiting(&table)
                {
                    victim.notify_one();
                    crate::telemetry::connection_shed();
                    shed_at = Some(Instant::now());
                }
            }
            // Look again once a slot is given back (the closed one's, or
            // any), or after a while: the closed one may not have gone, or
            // a busy one may have gone idle meanwhile.
            let until = match shed_at {
                Some(at) => (at + SHED_WAIT).min(Instant::now() + LOOK_AGAIN),
                None => Instant::now() + LOOK_AGAIN,
            };
            let _ = tokio::time::timeout_at(until, freed).await;
        }
    }

    fn take(
        &self,
        table: &mut Table,
        client: Option<IpAddr>,
        probe: Arc<dyn Probe>,
        close: Arc<Notify>,
    ) -> Slot {
        let id = table.next_id;
        table.next_id += 1;
        if let Some(client) = client {
            *table.per_client.entry(client).or_default() += 1;
        }
        table.open.insert(
            id,
            Entry {
                client,
                probe,
                close: close.clone(),
            },
        );
        Slot {
            id,
            admission: self.clone(),
            close,
        }
    }

    /// The close signal of the connection that has waited longest, kept
    /// alive between requests before silent since opening.
    fn longest_waiting(table: &Table) -> Option<Arc<Notify>> {
        table
            .open
            .values()
            .filter_map(|entry| entry.probe.waiting().map(|w| (w, entry)))
            .min_by_key(|(waiting, _)| *waiting)
            .map(|(_, entry)| entry.close.clone())
    }

    fn release(&self, id: u64) {
        let mut table = self.lock();
        if let Some(entry) = table.open.remove(&id)
            && let Some(client) = entry.client
            && let Some(count) = table.per_client.get_mut(&client)
        {
            *count -= 1;
            if *count == 0 {
                table.per_client.remove(&client);
            }
        }
        drop(table);
        self.freed.notify_waiters();
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// A probe whose answer a test sets: 0 busy, 1 silent, 2 between requests.
    struct Fixed(AtomicU8, Instant);

    impl Probe for Fixed {
        fn waiting(&self) -> Option<Waiting> {
            match self.0.load(Ordering::Relaxed) {
                1 => Some(Waiting::Silent(self.1)),
                2 => Some(Waiting::BetweenRequests(self.1)),
                _ => None,
            }
        }
    }

    fn probe(state: u8) -> Arc<Fixed> {
        Arc::new(Fixed(AtomicU8::new(state), Instant::now()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn one_client_gets_its_share_and_no_more_while_others_still_get_in() {
        let table = Admission::new(10, 3, &[]);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(table.admit(ip("10.0.0.1"), probe(0)).await.unwrap());
        }
        assert_eq!(
            table.admit(ip("10.0.0.1"), probe(0)).await.err(),
            Some(Refused::ClientFull)
        );
        let other = table.admit(ip("10.0.0.2"), probe(0)).await.unwrap();
        // A slot given back is the client's again.
        held.pop();
        held.push(table.admit(ip("10.0.0.1"), probe(0)).await.unwrap());
        assert_eq!(table.open(), 4);
        drop(other);
        drop(held);
        assert_eq!(table.open(), 0);
    }

    #[tokio::test]
    async fn an_ipv6_client_is_its_slash_64_and_a_trusted_proxy_has_no_share() {
        let table = Admission::new(10, 1, &[ip("10.0.0.9")]);
        let _a = table.admit(ip("2001:db8::1"), probe(0)).await.unwrap();
        assert!(table.admit(ip("2001:db8::ffff:1"), probe(0)).await.is_err());
        let _b = table.admit(ip("2001:db8:0:1::1"), probe(0)).await.unwrap();
        let _c = table.admit(ip("::ffff:10.0.0.5"), probe(0)).await.unwrap();
        assert!(table.admit(ip("10.0.0.5"), probe(0)).await.is_err());
        let _p: Vec<Slot> = futures_join(&table, "10.0.0.9", 5).await;
        assert_eq!(table.open(), 8);
    }

    async fn futures_join(table: &Admission, peer: &str, n: usize) -> Vec<Slot> {
        let mut slots = Vec::new();
        for _ in 0..n {
            slots.push(table.admit(ip(peer), probe(0)).await.unwrap());
        }
        slots
    }

    #[tokio::test]
    async fn when_full_the_longest_idle_connection_is_closed_first() {
        let table = Admission::new(3, 3, &[]);
        let busy = table.admit(ip("10.0.0.1"), probe(0)).await.unwrap();
        let silent = table.admit(ip("10.0.0.2"), probe(1)).await.unwrap();
        let idle = table.admit(ip("10.0.0.3"), probe(2)).await.unwrap();
        let admit = |peer: &'static str| {
            let table = table.clone();
            tokio::spawn(async move { table.admit(ip(peer), probe(0)).await.ok() })
        };
        let waiting = admit("10.0.0.4");
        // The kept-alive one is told to close, not the silent or the busy one.
        tokio::time::timeout(std::time::Duration::from_secs(2), idle.closing())
            .await
            .expect("the idle connection is asked to close");
        drop(idle);
        let fourth = waiting.await.unwrap().expect("admitted");
        // Full again: now the silent one goes.
        let next = admit("10.0.0.5");
        tokio::time::timeout(std::time::Duration::from_secs(2), silent.closing())
            .await
            .expect("the silent connection is asked to close");
        drop(silent);
        let fifth = next.await.unwrap().expect("admitted");
        assert_eq!(table.open(), 3);
        drop((busy, fourth, fifth));
        assert_eq!(table.open(), 0);
    }

    #[tokio::test]
    async fn when_every_connection_is_busy_a_new_one_waits_for_a_slot() {
        let table = Admission::new(1, 1, &[]);
        let busy = table.admit(ip("10.0.0.1"), probe(0)).await.unwrap();
        let waiting = tokio::spawn({
            let table = table.clone();
            async move { table.admit(ip("10.0.0.2"), probe(0)).await.is_ok() }
        });
        // Nothing to close: it waits.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        drop(busy);
        assert!(waiting.await.unwrap());
    }
}
