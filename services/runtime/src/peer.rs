//! Who a connection comes from, as the limits count it: an IPv4 address, or an IPv6 /64 (one
//! subscriber's whole allocation, which a single client can cycle through at will), and the
//! per-address connection limit the listener applies at accept, before any byte is read.
//!
//! Loopback is not exempt: a test attacks from 127.0.0.2 and acts from 127.0.0.1, and a proxy on
//! the same host is one address like any other.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The unit per-address limits count: an IPv4 address (an IPv4-mapped IPv6 address is its IPv4
/// address), or the /64 network of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    /// One IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 /64: the address with its last 64 bits cleared.
    V6(Ipv6Addr),
}

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        }
    }
}

impl AddressKey {
    /// An address inside the counted unit (for matching against allow-lists).
    #[must_use]
    pub fn ip(self) -> IpAddr {
        match self {
            Self::V4(v4) => IpAddr::V4(v4),
            Self::V6(v6) => IpAddr::V6(v6),
        }
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// A per-address limit raised for a network: `CIDR=N` (e.g. `10.20.0.0/16=500` for a TV wall
/// behind one NAT address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// The addresses it applies to.
    pub net: ipnet::IpNet,
    /// Their limit, each (per address, or per /64 for IPv6).
    pub limit: u32,
}

impl std::str::FromStr for Allowance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (net, limit) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not CIDR=N, e.g. 10.20.0.0/16=500"))?;
        let net = net
            .trim()
            .parse::<ipnet::IpNet>()
            .or_else(|_| net.trim().parse::<IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| format!("{net:?} is not an address or a CIDR such as 10.20.0.0/16"))?;
        let limit = limit
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{limit:?} is not a whole number of at least 1"))?;
        Ok(Self {
            net: net.trunc(),
            limit,
        })
    }
}

/// The limit for a peer at `ip`: that of the most specific allowance containing it (matched on
/// the address itself, so an allowance for one IPv6 host works too), else `default`.
#[must_use]
pub fn limit_for(ip: IpAddr, default: u32, allowances: &[Allowance]) -> u32 {
    let ip = ip.to_canonical();
    allowances
        .iter()
        .filter(|a| a.net.contains(&ip))
        .max_by_key(|a| a.net.prefix_len())
        .map_or(default, |a| a.limit)
}

/// How often a refused address is logged: once per this, with the count since.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Open connections per address, at most `limit` each.
#[derive(Debug)]
pub struct PerAddressLimit {
    limit: u32,
    open: Mutex<HashMap<AddressKey, u32>>,
    /// Refused addresses: when they were last logged and how many were refused since.
    refused: Mutex<HashMap<AddressKey, (Instant, u64)>>,
}

/// One open connection of an address; the count goes down when it is dropped.
#[derive(Debug)]
pub struct AddressPermit {
    limits: Arc<PerAddressLimit>,
    key: AddressKey,
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        let mut open = self
            .limits
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl PerAddressLimit {
    /// At most `limit` connections per address at once.
    #[must_use]
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self {
            limit,
            open: Mutex::default(),
            refused: Mutex::default(),
        })
    }

    /// A permit for one more connection from `ip`, or `None` (logged once per address per
    /// minute, with how many were refused) when it already has `limit` open.
    #[must_use]
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddressPermit> {
        let key = AddressKey::from(ip);
        {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let n = open.entry(key).or_default();
            if *n < self.limit {
                *n += 1;
                return Some(AddressPermit {
                    limits: self.clone(),
                    key,
                });
            }
        }
        self.refused_one(key, Instant::now());
        None
    }

    /// Open connections of `ip`'s address now.
    #[must_use]
    pub fn open(&self, ip: IpAddr) -> u32 {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&AddressKey::from(ip))
            .copied()
            .unwrap_or(0)
    }

    /// Logs the refusals counted since an address was last logged, once a minute has passed
    /// (called from the accept loop, so a flood that stopped is still reported with its count).
    pub fn log_due(&self, now: Instant) {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, (logged, count)) in refused.iter_mut() {
            if *count > 0 && now.duration_since(*logged) >= LOG_EVERY {
                tracing::warn!(
                    address = %key,
                    refused = *count,
                    limit = self.limit,
                    "connections refused in the last minute: this address held \
                     --max-connections-per-address open connections"
                );
                *logged = now;
                *count = 0;
            }
        }
    }

    fn refused_one(&self, key: AddressKey, now: Instant) {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.len() > 1024 {
            refused.retain(|_, (logged, _)| now.duration_since(*logged) < LOG_EVERY);
        }
        match refused.get_mut(&key) {
            Some((logged, count)) if now.duration_since(*logged) < LOG_EVERY => *count += 1,
            entry => {
                let count = entry.map_or(1, |(_, count)| *count + 1);
                tracing::warn!(
                    address = %key,
                    refused = count,
                    limit = self.limit,
                    "connections refused: this address already holds --max-connections-per-address \
                     open connections (logged once a minute per address, with the count since)"
                );
                refused.insert(key, (now, 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("valid in the test");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("valid in the test");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("valid in the test");
        assert_eq!(AddressKey::from(a), AddressKey::from(b));
        assert_ne!(AddressKey::from(a), AddressKey::from(other));
        assert_eq!(AddressKey::from(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().expect("valid in the test");
        assert_eq!(
            AddressKey::from(mapped),
            AddressKey::V4(Ipv4Addr::new(127, 0, 0, 2))
        );
    }

    #[test]
    fn the_limit_is_per_address_and_permits_give_back() {
        let limits = PerAddressLimit::new(2);
        let one: IpAddr = "127.0.0.2".parse().expect("valid in the test");
        let two: IpAddr = "127.0.0.1".parse().expect("valid in the test");
        let a = limits.try_acquire(one).expect("first");
        let _b = limits.try_acquire(one).expect("second");
        assert!(limits.try_acquire(one).is_none(), "third from one address");
        assert!(limits.try_acquire(two).is_some(), "another address");
        drop(a);
        assert_eq!(limits.open(one), 1);
        assert!(limits.try_acquire(one).is_some(), "a slot came back");
    }

    #[test]
    fn refusals_are_logged_once_a_minute_with_the_count() {
        let limits = PerAddressLimit::new(1);
        let key = AddressKey::V4(Ipv4Addr::new(127, 0, 0, 2));
        let start = Instant::now();
        limits.refused_one(key, start);
        limits.refused_one(key, start + Duration::from_secs(1));
        limits.refused_one(key, start + Duration::from_secs(2));
        assert_eq!(
            limits.refused.lock().expect("valid in the test")[&key],
            (start, 2)
        );
        let later = start + Duration::from_secs(61);
        limits.refused_one(key, later);
        assert_eq!(
            limits.refused.lock().expect("valid in the test")[&key],
            (later, 0)
        );
        // A flood that stopped: its count is logged once the minute has passed.
        limits.refused_one(key, later + Duration::from_secs(1));
        limits.log_due(later + Duration::from_secs(30));
        assert_eq!(
            limits.refused.lock().expect("valid in the test")[&key].1,
            1,
            "not yet"
        );
        limits.log_due(later + Duration::from_secs(61));
        assert_eq!(
            limits.refused.lock().expect("valid in the test")[&key].1,
            0,
            "logged"
        );
    }

    #[test]
    fn allowances_parse_and_the_most_specific_wins() {
        let wide: Allowance = "10.0.0.0/8=100".parse().expect("valid in the test");
        let narrow: Allowance = "10.20.0.0/16 = 500".parse().expect("valid in the test");
        let host: Allowance = "192.0.2.7=9".parse().expect("valid in the test");
        assert_eq!(host.net.prefix_len(), 32);
        let all = [wide, narrow, host];
        let ip = |s: &str| s.parse::<IpAddr>().expect("valid in the test");
        let at = |s: &str| limit_for(ip(s), 64, &all);
        assert_eq!(at("10.20.3.4"), 500);
        assert_eq!(at("10.21.3.4"), 100);
        assert_eq!(at("192.0.2.7"), 9);
        assert_eq!(at("192.0.2.8"), 64);
        for bad in [
            "10.0.0.0/8",
            "10.0.0.0/33=5",
            "nope=5",
            "10.0.0.0/8=0",
            "10.0.0.0/8=x",
        ] {
            assert!(bad.parse::<Allowance>().is_err(), "{bad}");
        }
        let v6: Allowance = "2001:db8::/48=1000".parse().expect("valid in the test");
        assert_eq!(limit_for(ip("2001:db8:0:5::1"), 64, &[v6]), 1000);
        // One IPv6 host, narrower than the /64 the connection limit counts by.
        let one: Allowance = "2001:db8::5=7".parse().expect("valid in the test");
        assert_eq!(limit_for(ip("2001:db8::5"), 64, &[one]), 7);
        assert_eq!(limit_for(ip("2001:db8::6"), 64, &[one]), 64);
        assert_eq!(limit_for(ip("::ffff:192.0.2.7"), 64, &all), 9, "v4-mapped");
    }
}
