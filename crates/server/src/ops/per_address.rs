//! What one client address may hold at once: requests in flight (counted at the edge, from the
//! moment the headers arrived, body reading included) and connections (counted at accept).
//!
//! The counts live in a fixed table of atomic counters indexed by a keyed hash of the client's
//! network (an IPv4 address, an IPv6 /64), not in a map: taking and giving back a place is two
//! atomic operations, nothing is allocated per address, and there is nothing to sweep, so a
//! million distinct addresses cost what one does. Two networks that hash to one counter share
//! its budget; with 16,384 counters and a random key per process, an attacker cannot choose
//! whose budget it shares, and an honest client rarely shares at all.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const SLOTS: usize = 16_384;

/// Counts per client network, each at most `max`.
pub struct PerAddress {
    slots: Box<[AtomicU32]>,
    key: std::collections::hash_map::RandomState,
    max: u32,
}

/// A place taken in [`PerAddress`]; dropping it gives it back.
#[must_use = "the place is given back when this is dropped"]
pub struct Held {
    counts: Arc<PerAddress>,
    slot: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.counts.slots[self.slot].fetch_sub(1, Ordering::AcqRel);
    }
}

impl PerAddress {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: (0..SLOTS).map(|_| AtomicU32::new(0)).collect(),
            key: std::collections::hash_map::RandomState::new(),
            max: u32::try_from(max).unwrap_or(u32::MAX),
        })
    }

    /// A place for `client`, or `None` when its network holds `max` already (nothing is taken
    /// then).
    pub fn take(self: &Arc<Self>, client: IpAddr) -> Option<Held> {
        let slot = usize::try_from(self.key.hash_one(network(client))).unwrap_or_default() % SLOTS;
        let held = self.slots[slot].fetch_add(1, Ordering::AcqRel);
        if held >= self.max {
            self.slots[slot].fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Held { counts: self.clone(), slot })
    }
}

/// The network one client counts as: an IPv4 address (IPv4-mapped IPv6 included), or an IPv6
/// address's /64 (one host usually has a whole /64 to pick addresses from).
fn network(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => u128::from(v6) & !u128::from(u64::MAX),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_network_holds_at_most_max_and_gets_places_back() {
        let counts = PerAddress::new(2);
        let a = counts.take(ip("203.0.113.7")).unwrap();
        let _b = counts.take(ip("203.0.113.7")).unwrap();
        assert!(counts.take(ip("203.0.113.7")).is_none(), "a third place");
        assert!(counts.take(ip("::ffff:203.0.113.7")).is_none(), "the same address, IPv4-mapped");
        drop(a);
        assert!(counts.take(ip("203.0.113.7")).is_some(), "a place given back");
    }

    #[test]
    fn an_ipv6_host_cannot_spread_over_its_64() {
        let counts = PerAddress::new(1);
        let _held = counts.take(ip("2001:db8:1:2::1")).unwrap();
        assert!(counts.take(ip("2001:db8:1:2:ffff::9")).is_none());
    }

    #[test]
    fn other_networks_keep_their_own_places() {
        let counts = PerAddress::new(1);
        let _held = counts.take(ip("203.0.113.7")).unwrap();
        // Of many other addresses, all but those sharing the full one's counter get a place.
        let refused = (0..1000u32).filter(|i| counts.take(IpAddr::from((0x0a00_0000 + i).to_be_bytes())).is_none());
        assert!(refused.count() <= 2);
    }
}
