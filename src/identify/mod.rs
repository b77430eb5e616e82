//! Who is the client: the socket peer, or the address your own proxies say they forwarded for.
//!
//! Every per-client decision the SIEM makes (scores, windows, blocks) is keyed by the address
//! this module hands back, so it must be an address the client cannot choose. The default,
//! [`IpResolver::peer_only`], uses the TCP peer and ignores every forwarding header. Behind
//! reverse proxies or load balancers, [`IpResolver::trusting_proxies`] lists the proxies'
//! networks; forwarding headers are then read only on connections that come *from* one of
//! them, and only the hops those proxies appended are believed (see the deployment caveat on
//! [`IpResolver`]).
//!
//! Addresses are normalised first ([`normalize`]): an IPv4-mapped IPv6 address
//! (`::ffff:192.0.2.1`, what a dual-stack socket reports for an IPv4 client) is the IPv4
//! address it carries. Per-client state is keyed by [`mask`] with the prefixes set on
//! [`SiemBuilder`](crate::SiemBuilder) (IPv6 clients by their /64 by default): one subscriber usually holds a whole /64 and can rotate
//! through it at will.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use http::HeaderMap;
use ipnet::{Ipv4Net, Ipv6Net};

/// At most this many forwarding hops are examined per request; a longer chain resolves to the
/// last trusted hop seen.
const MAX_HOPS: usize = 32;

/// A single list element longer than this is not an address a proxy wrote; it is treated as
/// garbage so that scanning one request's headers costs at most `MAX_HOPS * MAX_ELEMENT` bytes.
const MAX_ELEMENT: usize = 512;

/// The longest node value worth parsing: `[` + a 45-byte IPv6 text form + `]:` + a port.
const MAX_NODE: usize = 64;

/// Which forwarding header the trusted proxies set.
///
/// Only the chosen header is read. Reading both would let a client put a forged address in
/// whichever one your proxies do not sanitise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the de facto standard; nginx, HAProxy,
    /// most cloud load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client;proto=https, for="[2001:db8::1]:443"` (RFC 7239).
    Forwarded,
}

impl ForwardedHeader {
    fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

/// Resolves the client address of a request and the key its per-client state is stored under.
///
/// Cheap to clone: the trusted-proxy list is shared. [`resolve`](IpResolver::resolve) runs on
/// every request; it does not allocate.
///
/// # Examples
///
/// Directly exposed to the internet, the socket peer is the client and headers are ignored:
///
/// ```
/// use std::net::IpAddr;
/// use http::HeaderMap;
/// use tower_siem::identify::IpResolver;
///
/// let resolver = IpResolver::peer_only();
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
///
/// let peer: IpAddr = "203.0.113.9".parse().unwrap();
/// assert_eq!(resolver.resolve(peer, &headers), peer);
/// ```
///
/// Behind your own proxies, the header is read from the right and trusted hops are skipped; the
/// address the client wrote on the left is never believed:
///
/// ```
/// use std::net::IpAddr;
/// use http::HeaderMap;
/// use tower_siem::identify::{ForwardedHeader, IpResolver};
///
/// # fn main() -> Result<(), tower_siem::identify::IdentifyError> {
/// let resolver = IpResolver::trusting_proxies(["10.0.0.0/8", "::1"])?;
///
/// let mut headers = HeaderMap::new();
/// // The client sent "6.6.6.6"; the edge proxy appended the real client, the inner proxy
/// // appended the edge proxy.
/// headers.insert("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2".parse().unwrap());
///
/// let peer: IpAddr = "10.0.0.1".parse().unwrap();
/// let client = resolver.resolve(peer, &headers);
/// assert_eq!(client, "198.51.100.7".parse::<IpAddr>().unwrap());
///
/// // The same header from a peer that is not one of your proxies is ignored.
/// let stranger: IpAddr = "192.0.2.50".parse().unwrap();
/// assert_eq!(resolver.resolve(stranger, &headers), stranger);
///
/// // RFC 7239 instead:
/// let resolver = resolver.header(ForwardedHeader::Forwarded);
/// let mut headers = HeaderMap::new();
/// headers.insert("forwarded", r#"for="[2001:db8::7]:4711";proto=https"#.parse().unwrap());
/// assert_eq!(resolver.resolve(peer, &headers), "2001:db8::7".parse::<IpAddr>().unwrap());
/// # Ok(())
/// # }
/// ```
///
/// # Deployment caveat
///
/// A forwarding header is a list that every hop *appends* to, and the client writes the first
/// entries itself: `curl -H 'X-Forwarded-For: 1.2.3.4'` arrives at your edge proxy, which
/// appends the real address, giving `1.2.3.4, <real>`. The leftmost entry is therefore whatever
/// the attacker wanted it to be, and keying on it would let one client pose as unlimited
/// different clients (evading every per-IP rule) or frame a victim's address to get it
/// blocked. This resolver never uses the leftmost entry as such: it walks from the right, where
/// the entries were written by proxies you listed, and stops at the first address that is not
/// one of them, which is the address your outermost proxy saw.
///
/// That only holds if the list is right:
///
/// - List exactly the proxies that append to the chosen header, and nothing wider. Trusting a
///   whole cloud provider's or CDN's range trusts every other tenant in it, who can then send
///   any header they like. "Trust every proxy" (`0.0.0.0/0`, `::/0`, or networks that add up
///   to a whole address family) is refused, and so is a public network broader than IPv4 /8
///   or IPv6 /24.
/// - Pick the header your proxies actually set. If they set `X-Forwarded-For` but you read
///   `Forwarded`, the client's own `Forwarded` header passes through untouched.
/// - If the application is also reachable without the proxies, those connections are simply
///   keyed by their peer, which is correct.
#[derive(Clone)]
#[must_use]
pub struct IpResolver {
    trusted: Arc<Trusted>,
    header: ForwardedHeader,
}

#[derive(Default)]
struct Trusted {
    v4: Box<[Ipv4Net]>,
    v6: Box<[Ipv6Net]>,
}

impl Trusted {
    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// `ip` must already be normalised.
    fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.iter().any(|net| net.contains(&v4)),
            IpAddr::V6(v6) => self.v6.iter().any(|net| net.contains(&v6)),
        }
    }
}

impl fmt::Debug for IpResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Nets<'a>(&'a Trusted);
        impl fmt::Debug for Nets<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.v4.iter())
                    .entries(self.0.v6.iter())
                    .finish()
            }
        }
        f.debug_struct("IpResolver")
            .field("trusted_proxies", &Nets(&self.trusted))
            .field("header", &self.header)
            .finish()
    }
}

impl Default for IpResolver {
    fn default() -> Self {
        Self::peer_only()
    }
}

impl IpResolver {
    /// The safe default: the socket peer is the client and forwarding headers are ignored.
    ///
    /// ```
    /// use tower_siem::identify::IpResolver;
    ///
    /// let resolver = IpResolver::peer_only();
    /// assert!(!resolver.is_trusted("127.0.0.1".parse().unwrap()));
    /// ```
    pub fn peer_only() -> Self {
        IpResolver {
            trusted: Arc::new(Trusted::default()),
            header: ForwardedHeader::default(),
        }
    }

    /// Trusts forwarding headers, but only on connections whose peer is inside one of these
    /// networks.
    ///
    /// Each entry is a CIDR (`"10.0.0.0/8"`, `"fd00::/8"`) or a bare address (`"192.168.1.7"`,
    /// `"::1"`), which means that one host. Host bits below the prefix are ignored
    /// (`"10.1.2.3/8"` is `10.0.0.0/8`), IPv4-mapped IPv6 networks (`"::ffff:10.0.0.0/104"`)
    /// are taken as the IPv4 network they map, and surrounding whitespace is allowed. An
    /// empty list is the same as [`peer_only`](IpResolver::peer_only). Read the deployment
    /// caveat on [`IpResolver`] before choosing the list.
    ///
    /// ```
    /// use tower_siem::identify::{IdentifyErrorKind, IpResolver};
    ///
    /// let resolver = IpResolver::trusting_proxies(["10.0.0.0/8", "::1"]).unwrap();
    /// assert!(resolver.is_trusted("10.20.30.40".parse().unwrap()));
    ///
    /// let err = IpResolver::trusting_proxies(["0.0.0.0/0"]).unwrap_err();
    /// assert_eq!(err.kind(), IdentifyErrorKind::TrustAll);
    /// ```
    ///
    /// Lists that would trust (nearly) anyone are refused: one whose networks together cover
    /// every IPv4 or every IPv6 address (`["0.0.0.0/1", "128.0.0.0/1"]`), and any public network
    /// broader than IPv4 /8 or IPv6 /24 ([`MIN_PUBLIC_PREFIX_V4`], [`MIN_PUBLIC_PREFIX_V6`]).
    /// Private, loopback, link-local, CGNAT (`100.64.0.0/10`) and unique-local (`fc00::/7`)
    /// networks may be as broad as they are; a CDN's published ranges (`104.16.0.0/13`,
    /// `2a06:98c0::/29`) pass.
    ///
    /// ```
    /// use tower_siem::identify::{IdentifyErrorKind, IpResolver};
    ///
    /// let err = IpResolver::trusting_proxies(["0.0.0.0/1", "128.0.0.0/1"]).unwrap_err();
    /// assert_eq!(err.kind(), IdentifyErrorKind::TrustAll);
    /// let err = IpResolver::trusting_proxies(["52.0.0.0/6"]).unwrap_err();
    /// assert_eq!(err.kind(), IdentifyErrorKind::TooBroad);
    /// assert!(IpResolver::trusting_proxies(["104.16.0.0/13", "2a06:98c0::/29"]).is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// [`IdentifyErrorKind::InvalidCidr`] for an entry that is not an address or CIDR (the
    /// message quotes it), [`IdentifyErrorKind::TrustAll`] for any `/0` network or a list
    /// covering a whole address family, which would let every client on the internet forge
    /// its address, and [`IdentifyErrorKind::TooBroad`] for a public network broader than the
    /// limits above.
    pub fn trusting_proxies<I, S>(cidrs: I) -> Result<Self, IdentifyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for cidr in cidrs {
            match parse_cidr(cidr.as_ref())? {
                Net::V4(net) => v4.push(net),
                Net::V6(net) => v6.push(net),
            }
        }
        v4.sort_unstable();
        v4.dedup();
        v6.sort_unstable();
        v6.dedup();
        check_breadth(&v4, &v6)?;
        Ok(IpResolver {
            trusted: Arc::new(Trusted {
                v4: v4.into_boxed_slice(),
                v6: v6.into_boxed_slice(),
            }),
            ..Self::peer_only()
        })
    }

    /// Chooses which forwarding header the trusted proxies set (default
    /// [`ForwardedHeader::XForwardedFor`]). The other one is never read.
    ///
    /// ```
    /// use tower_siem::identify::{ForwardedHeader, IpResolver};
    ///
    /// let resolver = IpResolver::trusting_proxies(["10.0.0.0/8"])
    ///     .unwrap()
    ///     .header(ForwardedHeader::Forwarded);
    /// # let _ = resolver;
    /// ```
    pub fn header(mut self, h: ForwardedHeader) -> Self {
        self.header = h;
        self
    }

    /// The client address of a request that arrived from `peer` with `headers`, normalised
    /// (see [`normalize`]).
    ///
    /// If the peer is not a trusted proxy, the answer is the peer. Otherwise the chosen
    /// header's entries (every occurrence of the header in order, comma-separated lists
    /// joined) are walked from the right, skipping trusted proxies; the first address that is
    /// not a trusted proxy is the client. Entries may carry a port (`1.2.3.4:5678`,
    /// `[2001:db8::1]:443`) and, for `Forwarded`, be quoted and sit among other parameters
    /// (`by=`, `proto=`, `host=`; `for=` in any case).
    ///
    /// An entry that is not an address (`unknown`, an obfuscated `_hidden` identifier,
    /// malformed or non-UTF-8 bytes) ends the walk: the answer is the last trusted hop to its
    /// right, never the garbage. If every entry is a trusted proxy, the leftmost one is the
    /// answer. At most 32 entries are examined.
    ///
    /// Never panics, whatever the header bytes, and does not allocate.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = normalize(peer);
        if self.trusted.is_empty() || !self.trusted.contains(peer) {
            return peer;
        }
        self.walk(peer, headers)
    }

    /// Whether `ip` (normalised first) is inside one of the trusted-proxy networks.
    ///
    /// ```
    /// use tower_siem::identify::IpResolver;
    ///
    /// let resolver = IpResolver::trusting_proxies(["10.0.0.0/8"]).unwrap();
    /// assert!(resolver.is_trusted("::ffff:10.1.2.3".parse().unwrap()));
    /// assert!(!resolver.is_trusted("11.0.0.1".parse().unwrap()));
    /// ```
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.contains(normalize(ip))
    }

    /// The header walk; `peer` is normalised and trusted.
    fn walk(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let forwarded = self.header == ForwardedHeader::Forwarded;
        let mut last_trusted = peer;
        let mut hops = 0;
        for value in headers.get_all(self.header.name()).iter().rev() {
            let mut elements = RevElements::new(value.as_bytes(), forwarded);
            while let Some(element) = elements.next_element() {
                if hops == MAX_HOPS {
                    return last_trusted;
                }
                hops += 1;
                let Some(raw) = element else {
                    return last_trusted;
                };
                // RFC 9110 §5.6.1: empty list elements carry nothing and are ignored.
                if trim_ows(raw).is_empty() {
                    continue;
                }
                let parsed = if forwarded {
                    parse_forwarded_element(raw)
                } else {
                    parse_node(raw)
                };
                let Some(ip) = parsed else {
                    return last_trusted;
                };
                let ip = normalize(ip);
                if !self.trusted.contains(ip) {
                    return ip;
                }
                last_trusted = ip;
            }
        }
        last_trusted
    }
}

/// The address normalised ([`normalize`]) and masked to a prefix: IPv4 to `v4` bits, IPv6 to
/// `v6` bits (prefixes above 32 and 128 count as 32 and 128; 0 masks everything).
///
/// ```
/// use tower_siem::identify::mask;
/// assert_eq!(mask("2001:db8:1:2:3:4:5:6".parse().unwrap(), 32, 64), "2001:db8:1:2::".parse::<std::net::IpAddr>().unwrap());
/// assert_eq!(mask("::ffff:192.0.2.77".parse().unwrap(), 24, 64), "192.0.2.0".parse::<std::net::IpAddr>().unwrap());
/// ```
pub fn mask(ip: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match normalize(ip) {
        IpAddr::V4(a) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(v4.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(v6.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes the IPv4 address it carries; every other
/// address is returned unchanged.
///
/// A dual-stack listener reports IPv4 clients in this form; without normalising, one client
/// would have two identities and an IPv4 trusted-proxy list would not match its own proxies.
/// IPv4-compatible addresses (`::a.b.c.d`, deprecated) are left alone.
///
/// ```
/// use std::net::IpAddr;
/// use tower_siem::identify::normalize;
///
/// let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
/// assert_eq!(normalize(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
/// ```
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

/// Why an [`IpResolver`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub struct IdentifyError {
    kind: IdentifyErrorKind,
    detail: Detail,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

/// The kind of an [`IdentifyError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentifyErrorKind {
    /// A trusted-proxy entry is neither an address nor a CIDR.
    InvalidCidr,
    /// A trusted-proxy entry has prefix length 0, or the entries together cover every IPv4 or
    /// every IPv6 address: every client would be trusted.
    TrustAll,
    /// A trusted-proxy entry is a public network broader than IPv4 /8 or IPv6 /24
    /// ([`MIN_PUBLIC_PREFIX_V4`], [`MIN_PUBLIC_PREFIX_V6`]): everyone in it could forge any
    /// client address.
    TooBroad,
    /// A key prefix length is out of range for its address family (see
    /// [`SiemBuilder::ipv6_prefix`](crate::SiemBuilder::ipv6_prefix)).
    InvalidPrefix,
}

#[derive(Debug)]
enum Detail {
    Cidr(Box<str>),
    Prefix(Family, u8),
    /// The list covers the whole family.
    Covers(Family),
}

#[derive(Clone, Copy, Debug)]
enum Family {
    V4,
    V6,
}

impl IdentifyError {
    /// What went wrong.
    pub fn kind(&self) -> IdentifyErrorKind {
        self.kind
    }

    fn cidr(
        kind: IdentifyErrorKind,
        input: &str,
        source: Option<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        IdentifyError {
            kind,
            detail: Detail::Cidr(input.into()),
            source,
        }
    }

    /// Checks a key prefix length: `1..=32` for IPv4, `1..=128` for IPv6.
    pub(crate) fn check_prefix(ipv6: bool, bits: u8) -> Result<u8, IdentifyError> {
        let (family, max) = if ipv6 {
            (Family::V6, 128)
        } else {
            (Family::V4, 32)
        };
        if (1..=max).contains(&bits) {
            Ok(bits)
        } else {
            Err(IdentifyError::prefix(family, bits))
        }
    }

    fn covers(family: Family) -> Self {
        IdentifyError {
            kind: IdentifyErrorKind::TrustAll,
            detail: Detail::Covers(family),
            source: None,
        }
    }

    fn prefix(family: Family, bits: u8) -> Self {
        IdentifyError {
            kind: IdentifyErrorKind::InvalidPrefix,
            detail: Detail::Prefix(family, bits),
            source: None,
        }
    }
}

impl fmt::Display for IdentifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.detail, self.kind) {
            (Detail::Cidr(input), IdentifyErrorKind::TrustAll) => write!(
                f,
                "refusing to trust every proxy ({input:?} has prefix length 0): any client could \
                 forge its address; list only your own proxies' networks"
            ),
            (Detail::Cidr(input), IdentifyErrorKind::TooBroad) => write!(
                f,
                "refusing to trust the public network {input:?}: it is broader than IPv4 \
                 /{MIN_PUBLIC_PREFIX_V4} or IPv6 /{MIN_PUBLIC_PREFIX_V6}, and anyone in it \
                 could forge any client's address; list only your own proxies' addresses or \
                 your CDN's published ranges"
            ),
            (Detail::Covers(family), _) => write!(
                f,
                "refusing to trust every proxy: the trusted networks together cover every {} \
                 address, so any client could forge its address; list only your own proxies' \
                 networks",
                match family {
                    Family::V4 => "IPv4",
                    Family::V6 => "IPv6",
                }
            ),
            (Detail::Cidr(input), _) => write!(
                f,
                "invalid trusted-proxy CIDR {input:?}: expected an address or address/prefix, \
                 such as \"10.0.0.0/8\", \"192.168.1.7\" or \"::1\""
            ),
            (Detail::Prefix(Family::V4, bits), _) => {
                write!(f, "invalid IPv4 key prefix /{bits}: must be in 1..=32")
            }
            (Detail::Prefix(Family::V6, bits), _) => {
                write!(f, "invalid IPv6 key prefix /{bits}: must be in 1..=128")
            }
        }
    }
}

impl StdError for IdentifyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

enum Net {
    V4(Ipv4Net),
    V6(Ipv6Net),
}

/// Shortest prefix a trusted public IPv4 network may have: a /8 is the largest block ever
/// assigned to one organisation, and a CDN's ranges are far narrower (Cloudflare's broadest is
/// a /13).
pub const MIN_PUBLIC_PREFIX_V4: u8 = 8;
/// Shortest prefix a trusted public IPv6 network may have: a /24 holds 256 regional-registry
/// allocations of the usual /32 (Cloudflare's broadest range is a /29).
pub const MIN_PUBLIC_PREFIX_V6: u8 = 24;

/// IPv4 networks that are not public: private, loopback, link-local, CGNAT, "this network".
const NON_PUBLIC_V4: [(u32, u8); 7] = [
    (0x0A00_0000, 8),  // 10.0.0.0/8
    (0xAC10_0000, 12), // 172.16.0.0/12
    (0xC0A8_0000, 16), // 192.168.0.0/16
    (0x7F00_0000, 8),  // 127.0.0.0/8
    (0xA9FE_0000, 16), // 169.254.0.0/16
    (0x6440_0000, 10), // 100.64.0.0/10
    (0x0000_0000, 8),  // 0.0.0.0/8
];
/// IPv6 networks that are not public: loopback, link-local, unique-local.
const NON_PUBLIC_V6: [(u128, u8); 3] = [
    (1, 128),                 // ::1/128
    (0xfe80_u128 << 112, 10), // fe80::/10
    (0xfc00_u128 << 112, 7),  // fc00::/7
];

/// Refuses trusted-proxy lists that trust (nearly) anyone: networks covering a whole family
/// together, and public networks broader than the limits. `v4` and `v6` are sorted.
pub(crate) fn check_breadth(v4: &[Ipv4Net], v6: &[Ipv6Net]) -> Result<(), IdentifyError> {
    let ranges4 = v4.iter().map(|n| {
        (
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        )
    });
    if covers(ranges4, u128::from(u32::MAX)) {
        return Err(IdentifyError::covers(Family::V4));
    }
    let ranges6 = v6
        .iter()
        .map(|n| (u128::from(n.network()), u128::from(n.broadcast())));
    if covers(ranges6, u128::MAX) {
        return Err(IdentifyError::covers(Family::V6));
    }
    // Whether the network `start/len` lies inside `net/bits`; IPv4 sits in the top 32 bits.
    let inside = |start: u128, len: u8, (net, bits): (u128, u8)| {
        len >= bits && (start >> (128 - u32::from(bits))) == (net >> (128 - u32::from(bits)))
    };
    for n in v4 {
        let start = u128::from(u32::from(n.network()));
        let public = !NON_PUBLIC_V4
            .iter()
            .any(|&(net, bits)| inside(start << 96, n.prefix_len(), (u128::from(net) << 96, bits)));
        if public && n.prefix_len() < MIN_PUBLIC_PREFIX_V4 {
            return Err(IdentifyError::cidr(
                IdentifyErrorKind::TooBroad,
                &n.to_string(),
                None,
            ));
        }
    }
    for n in v6 {
        let start = u128::from(n.network());
        let public = !NON_PUBLIC_V6
            .iter()
            .any(|&nb| inside(start, n.prefix_len(), nb));
        if public && n.prefix_len() < MIN_PUBLIC_PREFIX_V6 {
            return Err(IdentifyError::cidr(
                IdentifyErrorKind::TooBroad,
                &n.to_string(),
                None,
            ));
        }
    }
    Ok(())
}

/// Whether the inclusive `ranges`, sorted by start, together cover `0..=max`.
fn covers(ranges: impl Iterator<Item = (u128, u128)>, max: u128) -> bool {
    // The first address not yet covered; `None` once everything up to `max` is.
    let mut next: Option<u128> = Some(0);
    for (start, end) in ranges {
        match next {
            Some(n) if start <= n => {
                next = if end >= max {
                    None
                } else {
                    Some(n.max(end + 1))
                }
            }
            Some(_) => return false,
            None => return true,
        }
    }
    next.is_none()
}

fn parse_cidr(input: &str) -> Result<Net, IdentifyError> {
    let invalid = |source: Option<Box<dyn StdError + Send + Sync>>| {
        IdentifyError::cidr(IdentifyErrorKind::InvalidCidr, input, source)
    };
    let text = input.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().map_err(|e| invalid(Some(Box::new(e))))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().map_err(|e| invalid(Some(Box::new(e))))?
        }
        Some(_) => return Err(invalid(None)),
    };
    if prefix > max {
        return Err(invalid(None));
    }
    if prefix == 0 {
        return Err(IdentifyError::cidr(
            IdentifyErrorKind::TrustAll,
            input,
            None,
        ));
    }
    let net = match addr {
        IpAddr::V4(v4) => {
            Net::V4(Ipv4Net::new(v4, prefix).map_err(|e| invalid(Some(Box::new(e))))?)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            // Peers are normalised before matching, so a mapped network must be stored as IPv4.
            Some(v4) if prefix >= 96 => {
                if prefix == 96 {
                    return Err(IdentifyError::cidr(
                        IdentifyErrorKind::TrustAll,
                        input,
                        None,
                    ));
                }
                Net::V4(Ipv4Net::new(v4, prefix - 96).map_err(|e| invalid(Some(Box::new(e))))?)
            }
            _ => Net::V6(Ipv6Net::new(v6, prefix).map_err(|e| invalid(Some(Box::new(e))))?),
        },
    };
    Ok(match net {
        Net::V4(n) => Net::V4(n.trunc()),
        Net::V6(n) => Net::V6(n.trunc()),
    })
}

/// Splits one header value into list elements from the right, without allocating.
///
/// With `quoted`, commas inside RFC 9110 quoted-strings do not split (a proxy may copy a
/// client-supplied `host="a,for=6.6.6.6"` into its own element). Yields `Some(bytes)` per
/// element and `None` once for an element that cannot be delimited (unbalanced quotes, or
/// longer than `MAX_ELEMENT`), after which it is exhausted.
struct RevElements<'a> {
    bytes: &'a [u8],
    /// Exclusive end of the next element; `None` when exhausted.
    end: Option<usize>,
    quoted: bool,
}

impl<'a> RevElements<'a> {
    fn new(bytes: &'a [u8], quoted: bool) -> Self {
        RevElements {
            bytes,
            end: Some(bytes.len()),
            quoted,
        }
    }

    fn next_element(&mut self) -> Option<Option<&'a [u8]>> {
        let end = self.end?;
        let mut in_quote = false;
        let mut i = end;
        while i > 0 {
            if end - i > MAX_ELEMENT {
                self.end = None;
                return Some(None);
            }
            i -= 1;
            match self.bytes[i] {
                b',' if !in_quote => {
                    self.end = Some(i);
                    return Some(Some(&self.bytes[i + 1..end]));
                }
                b'"' if self.quoted => {
                    // Scanning backwards, a quote is escaped when an odd run of backslashes
                    // precedes it; in a well-formed quoted-string that run is made of pairs.
                    let backslashes = self.bytes[..i]
                        .iter()
                        .rev()
                        .take_while(|&&b| b == b'\\')
                        .count();
                    if !(in_quote && backslashes % 2 == 1) {
                        in_quote = !in_quote;
                    }
                }
                _ => {}
            }
        }
        self.end = None;
        if in_quote || end > MAX_ELEMENT {
            Some(None)
        } else {
            Some(Some(&self.bytes[..end]))
        }
    }
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// One RFC 7239 `forwarded-element`: `pair *( ";" pair )`; the address of its single `for=`.
fn parse_forwarded_element(element: &[u8]) -> Option<IpAddr> {
    let mut node = None;
    let mut rest = element;
    loop {
        let (pair, tail) = split_pair(rest);
        let pair = trim_ows(pair);
        if !pair.is_empty() {
            let eq = pair.iter().position(|&b| b == b'=')?;
            let key = trim_ows(&pair[..eq]);
            if key.eq_ignore_ascii_case(b"for") {
                if node.is_some() {
                    // A repeated parameter is malformed (RFC 7239 §4); believe neither.
                    return None;
                }
                node = Some(trim_ows(&pair[eq + 1..]));
            }
        }
        match tail {
            Some(tail) => rest = tail,
            None => break,
        }
    }
    let value = node?;
    match value {
        [b'"', inner @ .., b'"'] => {
            let mut buf = [0u8; MAX_NODE];
            let inner = unescape(inner, &mut buf)?;
            parse_node(inner)
        }
        _ => parse_node(value),
    }
}

/// Splits off the first `;`-separated pair, honouring quoted-strings.
fn split_pair(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mut in_quote = false;
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quote => escaped = true,
            b'"' => in_quote = !in_quote,
            b';' if !in_quote => return (&s[..i], Some(&s[i + 1..])),
            _ => {}
        }
    }
    (s, None)
}

/// Removes quoted-pair escapes into `buf`; `None` if it does not fit or ends in a lone `\`.
fn unescape<'b>(inner: &[u8], buf: &'b mut [u8; MAX_NODE]) -> Option<&'b [u8]> {
    let mut len = 0;
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        let b = if b == b'\\' { *bytes.next()? } else { b };
        *buf.get_mut(len)? = b;
        len += 1;
    }
    Some(&buf[..len])
}

/// A node: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`.
fn parse_node(node: &[u8]) -> Option<IpAddr> {
    let node = trim_ows(node);
    if node.is_empty() || node.len() > MAX_NODE {
        return None;
    }
    let node = std::str::from_utf8(node).ok()?;
    if let Some(rest) = node.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        if !after.is_empty() && !is_port(after.strip_prefix(':')?) {
            return None;
        }
        return addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    // Unbracketed, only IPv4 can carry a port unambiguously.
    let (host, port) = node.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A decimal port, or an RFC 7239 obfuscated port (`_` followed by ALPHA / DIGIT / `.` / `_`
/// / `-`).
fn is_port(port: &str) -> bool {
    match port.as_bytes() {
        [b'_', rest @ ..] => {
            !rest.is_empty()
                && rest
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }
        digits => {
            !digits.is_empty()
                && digits.len() <= 5
                && digits.iter().all(u8::is_ascii_digit)
                && port.parse::<u16>().is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &str, values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        map
    }

    fn proxies() -> IpResolver {
        IpResolver::trusting_proxies(["10.0.0.0/8", "fd00::/8", "192.168.1.7"]).unwrap()
    }

    #[test]
    fn peer_only_ignores_headers() {
        let r = IpResolver::peer_only();
        let h = headers("x-forwarded-for", &[b"1.1.1.1"]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        assert_eq!(r.resolve(ip("::ffff:10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn walks_from_the_right() {
        let r = proxies();
        let h = headers(
            "x-forwarded-for",
            &[b"6.6.6.6, 1.2.3.4, 10.0.0.3", b"10.9.9.9"],
        );
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("1.2.3.4"));
    }

    #[test]
    fn garbage_stops_at_last_trusted() {
        let r = proxies();
        let h = headers("x-forwarded-for", &[b"1.2.3.4, unknown, 10.0.0.3"]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("10.0.0.3"));
        let h = headers("x-forwarded-for", &[b"1.2.3.4, \xff\xfe"]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn all_trusted_gives_leftmost() {
        let r = proxies();
        let h = headers("x-forwarded-for", &[b"10.1.1.1, 192.168.1.7, fd00::5"]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("10.1.1.1"));
    }

    #[test]
    fn empty_elements_are_skipped() {
        let r = proxies();
        let h = headers("x-forwarded-for", &[b"1.2.3.4,, ,10.0.0.3,"]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("1.2.3.4"));
    }

    #[test]
    fn hop_cap() {
        let r = proxies();
        let mut chain = String::from("1.2.3.4");
        for i in 0..40 {
            chain.push_str(&format!(", 10.0.0.{i}"));
        }
        let h = headers("x-forwarded-for", &[chain.as_bytes()]);
        // 32 hops are examined, all trusted: the leftmost examined is 10.0.0.8.
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("10.0.0.8"));
    }

    #[test]
    fn forwarded_quoting() {
        let r = proxies().header(ForwardedHeader::Forwarded);
        let h = headers(
            "forwarded",
            &[br#"for=6.6.6.6, For="[2001:db8::1]:80";proto=https;by=10.0.0.9"#],
        );
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("2001:db8::1"));
        // A comma inside a quoted host must not split the proxy's element.
        let h = headers(
            "forwarded",
            &[br#"for=1.2.3.4;host="x,for=6.6.6.6", for=10.0.0.2"#],
        );
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("1.2.3.4"));
        let h = headers("forwarded", &[br#"for=1.2.3.4;host="x\",for=6.6.6.6""#]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("1.2.3.4"));
        let h = headers("forwarded", &[b"for=1.2.3.4;for=5.6.7.8"]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        let h = headers("forwarded", &[b"for=_hidden, for=10.0.0.4"]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("10.0.0.4"));
        let h = headers("forwarded", &[br#"for="1.2.3.4"#]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        let h = headers("forwarded", &[br#"for="\1.2.3.4:80""#]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h), ip("1.2.3.4"));
    }

    #[test]
    fn nodes() {
        assert_eq!(parse_node(b" 1.2.3.4:5678 "), Some(ip("1.2.3.4")));
        assert_eq!(parse_node(b"[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node(b"[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node(b"2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node(b"1.2.3.4:_abc"), Some(ip("1.2.3.4")));
        assert_eq!(parse_node(b"1.2.3.4:99999"), None);
        assert_eq!(parse_node(b"1.2.3.4:"), None);
        assert_eq!(parse_node(b"[1.2.3.4]"), None);
        assert_eq!(parse_node(b"[2001:db8::1]x"), None);
        assert_eq!(parse_node(b"01.2.3.4"), None);
        assert_eq!(parse_node(b"unknown"), None);
    }

    #[test]
    fn cidrs() {
        let r = IpResolver::trusting_proxies([" ::ffff:10.0.0.0/104 ", "10.1.2.3/8"]).unwrap();
        assert!(r.is_trusted(ip("10.200.0.1")));
        assert_eq!(format!("{r:?}").matches("10.0.0.0/8").count(), 1);
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::1/129",
        ] {
            let err = IpResolver::trusting_proxies([bad]).unwrap_err();
            assert_eq!(err.kind(), IdentifyErrorKind::InvalidCidr, "{bad}");
            assert!(err.to_string().contains(&format!("{bad:?}")));
        }
        for all in ["0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96", "1.2.3.4/00"] {
            let err = IpResolver::trusting_proxies([all]).unwrap_err();
            assert_eq!(err.kind(), IdentifyErrorKind::TrustAll, "{all}");
        }
    }

    #[test]
    fn lists_trusting_nearly_anyone_are_refused() {
        // Together they cover a whole family: the issue's examples, and many smaller nets.
        let v4_eights: Vec<String> = (0..=255).map(|a| format!("{a}.0.0.0/8")).collect();
        let v6_quarters = ["::/2", "4000::/2", "8000::/2", "c000::/2"];
        for list in [
            vec!["0.0.0.0/1".to_string(), "128.0.0.0/1".to_string()],
            vec!["::/1".to_string(), "8000::/1".to_string()],
            vec![
                "0.0.0.0/2".into(),
                "64.0.0.0/2".into(),
                "128.0.0.0/2".into(),
                "192.0.0.0/2".into(),
                "10.0.0.0/8".into(),
            ],
            v4_eights,
            v6_quarters.iter().map(|s| s.to_string()).collect(),
            vec![
                "::ffff:0.0.0.0/97".into(),
                "128.0.0.0/1".into(),
                "::1".into(),
            ],
        ] {
            let err = IpResolver::trusting_proxies(&list).unwrap_err();
            assert_eq!(err.kind(), IdentifyErrorKind::TrustAll, "{list:?}");
            let msg = err.to_string();
            assert!(msg.contains("together cover every IP"), "{msg}");
            assert!(msg.contains("list only your own proxies"), "{msg}");
        }
        // Public and broader than /8 (IPv4) or /24 (IPv6).
        for broad in [
            "0.0.0.0/1",
            "52.0.0.0/6",
            "172.0.0.0/7",
            "2000::/3",
            "2a00::/16",
            "2606:4700::/23",
            "::/8",
        ] {
            let err = IpResolver::trusting_proxies(["10.0.0.0/8", broad]).unwrap_err();
            assert_eq!(err.kind(), IdentifyErrorKind::TooBroad, "{broad}");
            let msg = err.to_string();
            assert!(
                msg.contains("public network") && msg.contains("CDN"),
                "{msg}"
            );
        }
        // Ordinary lists still work: private networks however broad, CDN ranges, a /8.
        for ok in [
            vec!["10.0.0.0/8", "::1"],
            vec!["104.16.0.0/13"],
            vec!["2a06:98c0::/29", "2400:cb00::/32", "173.245.48.0/20"],
            vec!["17.0.0.0/8", "2001:db8::/24"],
            vec![
                "172.16.0.0/12",
                "192.168.0.0/16",
                "100.64.0.0/10",
                "169.254.0.0/16",
                "127.0.0.0/8",
            ],
            vec!["fc00::/7", "fe80::/10", "::ffff:10.0.0.0/104"],
        ] {
            if let Err(e) = IpResolver::trusting_proxies(&ok) {
                panic!("{ok:?}: {e}");
            }
        }
        // All of IPv4 but one address is not everything, and is refused as broad instead.
        let err =
            IpResolver::trusting_proxies(["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3"]).unwrap_err();
        assert_eq!(err.kind(), IdentifyErrorKind::TooBroad);
    }

    #[test]
    fn prefixes() {
        for (v6, bits) in [(true, 0), (true, 129), (false, 0), (false, 33)] {
            let err = IdentifyError::check_prefix(v6, bits).unwrap_err();
            assert_eq!(err.kind(), IdentifyErrorKind::InvalidPrefix);
            assert!(err.to_string().contains(&format!("/{bits}")), "{err}");
        }
        assert_eq!(IdentifyError::check_prefix(false, 1).unwrap(), 1);
        assert_eq!(IdentifyError::check_prefix(true, 128).unwrap(), 128);
        assert_eq!(mask(ip("200.1.1.1"), 1, 128), ip("128.0.0.0"));
        assert_eq!(mask(ip("::ffff:200.1.1.1"), 1, 128), ip("128.0.0.0"));
        assert_eq!(mask(ip("2001:db8::1"), 1, 128), ip("2001:db8::1"));
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync + Clone + fmt::Debug>() {}
        check::<IpResolver>();
        fn check_err<T: Send + Sync + StdError + 'static>() {}
        check_err::<IdentifyError>();
    }
}
