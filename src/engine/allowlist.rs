//! Networks never acted against: the configured ones, and those added at run time (through
//! [`Siem::allow_network`](crate::Siem::allow_network) or the admin API).
//!
//! The gate asks on every request whose client address it checks, so the lookup is cheap: an
//! atomic load when the list is empty; otherwise a read lock (never contended by other
//! readers) and one hash lookup per prefix length present in the list.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use ahash::RandomState;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use parking_lot::RwLock;
use serde::Serialize;

use crate::identify::{MIN_PUBLIC_PREFIX_V4, MIN_PUBLIC_PREFIX_V6};

/// The most networks that may be added at run time, on top of the configured ones.
pub const MAX_ADDED_NETWORKS: usize = 4096;

/// Where an allow-listed network comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NetSource {
    /// The builder's [`allow_networks`](crate::SiemBuilder::allow_networks): there for the
    /// life of the SIEM.
    Config,
    /// Added at run time ([`Siem::allow_network`](crate::Siem::allow_network), the admin API).
    Admin,
}

/// One allow-listed network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AllowedNetwork {
    /// The network, its host bits cleared (an IPv4-mapped IPv6 network as IPv4).
    #[serde(rename = "cidr", serialize_with = "crate::engine::allowlist::as_text")]
    pub net: IpNet,
    /// Configured or added at run time.
    pub source: NetSource,
    /// When it stops being allow-listed (ms since the epoch); `None`: until removed.
    pub until: Option<i64>,
}

impl AllowedNetwork {
    pub(crate) fn new(net: IpNet, source: NetSource, until: Option<i64>) -> Self {
        AllowedNetwork { net, source, until }
    }
}

fn as_text<S: serde::Serializer>(net: &IpNet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(net)
}

/// Why a network could not be added to or removed from the allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllowListError {
    /// Not an address or CIDR.
    Invalid(String),
    /// A public network broader than IPv4 /8 or IPv6 /24, a /0, or one that with the others
    /// would cover every address of its family: nothing would be acted against.
    TooBroad(String),
    /// [`MAX_ADDED_NETWORKS`] networks were added already.
    Full,
    /// A configured network: it can be neither replaced nor removed at run time.
    Configured(IpNet),
    /// Not on the allow-list (or configured, for removal).
    NotFound(IpNet),
}

impl fmt::Display for AllowListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowListError::Invalid(m) | AllowListError::TooBroad(m) => f.write_str(m),
            AllowListError::Full => write!(
                f,
                "the allow-list is full: {MAX_ADDED_NETWORKS} networks were added at run time; \
                 remove some, or configure broader ones"
            ),
            AllowListError::Configured(net) => write!(
                f,
                "{net} is allow-listed by configuration; it can only be changed there"
            ),
            AllowListError::NotFound(net) => write!(f, "{net} is not on the allow-list"),
        }
    }
}

impl std::error::Error for AllowListError {}

/// Parses `text` as a CIDR or a single address, host bits cleared, an IPv4-mapped IPv6
/// network as IPv4.
pub(crate) fn parse_network(text: &str) -> Result<IpNet, AllowListError> {
    let text = text.trim();
    let net = text
        .parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|e| {
            AllowListError::Invalid(format!(
                "invalid network {text:?}: {e}; expected an address or CIDR such as \
                 \"192.0.2.0/24\""
            ))
        })?;
    Ok(canonical(&net))
}

/// `net` with its host bits cleared; an IPv4-mapped IPv6 network (`::ffff:a.b.c.d/96+`) as
/// IPv4, since client addresses are compared in that form.
pub(crate) fn canonical(net: &IpNet) -> IpNet {
    match net {
        IpNet::V4(_) => net.trunc(),
        IpNet::V6(v6) => match v6.network().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => IpNet::V4(
                ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                    .unwrap_or_default()
                    .trunc(),
            ),
            _ => net.trunc(),
        },
    }
}

#[derive(Clone, Copy)]
struct Entry {
    source: NetSource,
    until: Option<i64>,
}

impl Entry {
    fn live(&self, t: i64) -> bool {
        self.until.is_none_or(|u| u > t)
    }
}

#[derive(Default)]
struct NetSet {
    nets: HashMap<IpNet, Entry, RandomState>,
    /// The prefix lengths present, per family, for the lookup.
    v4_lens: Vec<u8>,
    v6_lens: Vec<u8>,
    added: usize,
}

impl NetSet {
    fn reindex(&mut self) {
        let mut v4 = [false; 33];
        let mut v6 = [false; 129];
        for net in self.nets.keys() {
            match net {
                IpNet::V4(n) => v4[usize::from(n.prefix_len().min(32))] = true,
                IpNet::V6(n) => v6[usize::from(n.prefix_len().min(128))] = true,
            }
        }
        // Longest first: the narrow (office) networks are the common case.
        self.v4_lens = (0..=32u8).rev().filter(|&l| v4[usize::from(l)]).collect();
        self.v6_lens = (0..=128u8).rev().filter(|&l| v6[usize::from(l)]).collect();
        self.added = self
            .nets
            .values()
            .filter(|e| e.source == NetSource::Admin)
            .count();
    }

    /// Drops the added networks that expired by `t`.
    fn purge(&mut self, t: i64) {
        let before = self.nets.len();
        self.nets.retain(|_, e| e.live(t));
        if before != self.nets.len() {
            self.reindex();
        }
    }
}

/// The allow-list the engine consults.
pub(crate) struct AllowList {
    any: AtomicBool,
    set: RwLock<NetSet>,
}

impl AllowList {
    pub(crate) fn new(configured: &[IpNet]) -> Self {
        let mut set = NetSet::default();
        for n in configured {
            set.nets.insert(
                canonical(n),
                Entry {
                    source: NetSource::Config,
                    until: None,
                },
            );
        }
        set.reindex();
        AllowList {
            any: AtomicBool::new(!set.nets.is_empty()),
            set: RwLock::new(set),
        }
    }

    /// Whether `ip` (normalized: an IPv4-mapped address as IPv4) is in a network allow-listed
    /// at `t`.
    pub(crate) fn contains(&self, ip: IpAddr, t: i64) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let set = self.set.read();
        let lens = match ip {
            IpAddr::V4(_) => &set.v4_lens,
            IpAddr::V6(_) => &set.v6_lens,
        };
        lens.iter().any(|&len| {
            IpNet::new(ip, len)
                .ok()
                .and_then(|n| set.nets.get(&n.trunc()))
                .is_some_and(|e| e.live(t))
        })
    }

    /// Whether some network allow-listed at `t` shares an address with `net`.
    pub(crate) fn overlaps(&self, net: &IpNet, t: i64) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        self.set
            .read()
            .nets
            .iter()
            .any(|(a, e)| e.live(t) && (a.contains(&net.network()) || net.contains(&a.network())))
    }

    /// Every network allow-listed at `t`, configured ones first, then by address.
    pub(crate) fn list(&self, t: i64) -> Vec<AllowedNetwork> {
        let set = self.set.read();
        let mut out: Vec<AllowedNetwork> = set
            .nets
            .iter()
            .filter(|(_, e)| e.live(t))
            .map(|(net, e)| AllowedNetwork {
                net: *net,
                source: e.source,
                until: e.until,
            })
            .collect();
        out.sort_by(|a, b| {
            (a.source != NetSource::Config, a.net).cmp(&(b.source != NetSource::Config, b.net))
        });
        out
    }

    /// Adds (or renews) a network until `until` (`None`: until removed).
    pub(crate) fn add(&self, net: IpNet, until: Option<i64>, t: i64) -> Result<(), AllowListError> {
        let net = canonical(&net);
        let mut set = self.set.write();
        set.purge(t);
        self.any.store(!set.nets.is_empty(), Ordering::Release);
        match set.nets.get(&net) {
            Some(e) if e.source == NetSource::Config => {
                return Err(AllowListError::Configured(net))
            }
            Some(_) => {}
            None => {
                if set.added >= MAX_ADDED_NETWORKS {
                    return Err(AllowListError::Full);
                }
                check_breadth(&net, set.nets.keys())?;
            }
        }
        set.nets.insert(
            net,
            Entry {
                source: NetSource::Admin,
                until,
            },
        );
        set.reindex();
        self.any.store(true, Ordering::Release);
        Ok(())
    }

    /// Removes a network added at run time.
    pub(crate) fn remove(&self, net: IpNet, t: i64) -> Result<(), AllowListError> {
        let net = canonical(&net);
        let mut set = self.set.write();
        let result = match set.nets.get(&net) {
            Some(e) if e.source == NetSource::Config => Err(AllowListError::Configured(net)),
            Some(e) if e.live(t) => {
                set.nets.remove(&net);
                Ok(())
            }
            _ => Err(AllowListError::NotFound(net)),
        };
        set.purge(t);
        set.reindex();
        self.any.store(!set.nets.is_empty(), Ordering::Release);
        result
    }

    /// How many networks were added at run time (expired ones not yet purged included).
    #[cfg(test)]
    pub(crate) fn added(&self) -> usize {
        self.set.read().added
    }
}

/// The breadth rules of trusted proxies, applied to the allow-list: no public network broader
/// than IPv4 /8 or IPv6 /24, and no list that covers every address of a family (a /0, say).
fn check_breadth<'a>(
    new: &'a IpNet,
    nets: impl Iterator<Item = &'a IpNet>,
) -> Result<(), AllowListError> {
    fn split<'a>(nets: impl Iterator<Item = &'a IpNet>) -> (Vec<Ipv4Net>, Vec<Ipv6Net>) {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for n in nets {
            match n {
                IpNet::V4(n) => v4.push(*n),
                IpNet::V6(n) => v6.push(*n),
            }
        }
        v4.sort_unstable();
        v6.sort_unstable();
        (v4, v6)
    }
    let (v4, v6) = split(std::iter::once(new));
    if crate::identify::check_breadth(&v4, &v6).is_err() {
        return Err(AllowListError::TooBroad(format!(
            "{new} is too broad to allow-list: a public network may be at most IPv4 \
             /{MIN_PUBLIC_PREFIX_V4} or IPv6 /{MIN_PUBLIC_PREFIX_V6} wide, and nothing in it \
             would ever be acted against"
        )));
    }
    let (v4, v6) = split(nets.chain(std::iter::once(new)));
    match crate::identify::check_breadth(&v4, &v6) {
        Err(e) if e.kind() == crate::identify::IdentifyErrorKind::TrustAll => {
            Err(AllowListError::TooBroad(format!(
                "{new} is too broad to allow-list: with the networks already allowed it would \
                 cover every address of its family, and nothing would be acted against"
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        parse_network(s).unwrap()
    }

    #[test]
    fn lookups_follow_additions_removals_and_expiry() {
        let list = AllowList::new(&[net("10.0.0.0/8")]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(list.contains(ip("10.1.2.3"), 0));
        assert!(!list.contains(ip("198.51.100.7"), 0));
        list.add(net("198.51.100.0/24"), Some(1_000), 0).unwrap();
        assert!(list.contains(ip("198.51.100.7"), 999));
        assert!(!list.contains(ip("198.51.100.7"), 1_000));
        list.add(net("2001:db8::/48"), None, 0).unwrap();
        assert!(list.contains(ip("2001:db8::1"), 5_000));
        list.remove(net("2001:db8::/48"), 5_000).unwrap();
        assert!(!list.contains(ip("2001:db8::1"), 5_000));
        assert_eq!(
            list.remove(net("10.0.0.0/8"), 0),
            Err(AllowListError::Configured(net("10.0.0.0/8")))
        );
        assert_eq!(
            list.add(net("10.0.0.0/8"), None, 0),
            Err(AllowListError::Configured(net("10.0.0.0/8")))
        );
        assert!(matches!(
            list.add(net("0.0.0.0/0"), None, 0),
            Err(AllowListError::TooBroad(_))
        ));
        assert!(matches!(
            list.add(net("64.0.0.0/4"), None, 0),
            Err(AllowListError::TooBroad(_))
        ));
        // An IPv4-mapped network is IPv4.
        assert_eq!(net("::ffff:192.0.2.0/120"), net("192.0.2.0/24"));
    }

    #[test]
    fn additions_are_bounded() {
        let list = AllowList::new(&[]);
        for i in 0..MAX_ADDED_NETWORKS {
            let n = IpNet::new(IpAddr::from([10, (i >> 8) as u8, i as u8, 0]), 24).unwrap();
            list.add(n, None, 0).unwrap();
        }
        assert_eq!(list.added(), MAX_ADDED_NETWORKS);
        assert_eq!(
            list.add(net("192.0.2.0/24"), None, 0),
            Err(AllowListError::Full)
        );
        // Renewing one already there is not an addition.
        list.add(net("10.0.1.0/24"), Some(10), 0).unwrap();
        // Expired ones make room.
        list.add(net("192.0.2.0/24"), None, 11).unwrap();
    }
}
