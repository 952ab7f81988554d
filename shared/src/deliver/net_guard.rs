//! The outbound HTTP policy for webhook and HTTP destinations (and notifications): no request
//! reaches loopback, link-local (the cloud metadata service), private, carrier-grade NAT,
//! multicast or reserved addresses unless the tenant allowed the host by name.
//!
//! Checked in three places, because each sees what the others cannot:
//! - [`check_url`] before the first request: IP-literal hosts never reach a resolver;
//! - the resolver of [`guarded_client`]: every address a name resolves to, and those are the
//!   addresses the client connects to (no second lookup, so DNS rebinding gains nothing);
//! - the redirect policy of [`guarded_client`]: every hop, with the same checks as the first URL.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

/// The most redirects one request follows.
pub const MAX_REDIRECTS: usize = 5;

/// Hosts a tenant allows even when they resolve to a forbidden address (tenant setting
/// `allowed_hosts`). An entry is a host name or IP address, optionally with a port
/// (`hooks.internal`, `hooks.internal:8443`, `10.0.0.7`, `[fd00::7]:443`); names match exactly,
/// case-insensitively, with no wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<AllowEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowEntry {
    /// Lower-case name without a trailing dot, or an IP address in canonical form (no brackets).
    host: String,
    port: Option<u16>,
}

/// Whether an allow list names a host, and on which ports.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Yes,
    OnlyOtherPorts(Vec<u16>),
    No,
}

impl AllowList {
    /// An allow list that allows nothing: every forbidden address is refused.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parse the tenant's entries; the error names the first bad entry and what is allowed.
    pub fn new<I, S>(entries: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for e in entries {
            let e = e.as_ref();
            out.push(parse_entry(e).ok_or_else(|| {
                format!("allowed host {e:?}: allowed is a host name or IP address, optionally with :port (e.g. hooks.internal:8443, [fd00::7]:443)")
            })?);
        }
        Ok(AllowList { entries: out })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when `host` (a name or IP address, any case) on `port` is allowed.
    pub fn permits(&self, host: &str, port: u16) -> bool {
        self.lookup(&normalize_host(host), port) == Allowed::Yes
    }

    /// True when some entry names `host`, whatever its port (the resolver sees no port; the
    /// port is checked on the URL, see [`check_url`]).
    fn names_host(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.entries.iter().any(|e| e.host == host)
    }

    fn lookup(&self, host: &str, port: u16) -> Allowed {
        let mut ports = Vec::new();
        for e in self.entries.iter().filter(|e| e.host == host) {
            match e.port {
                None => return Allowed::Yes,
                Some(p) if p == port => return Allowed::Yes,
                Some(p) => ports.push(p),
            }
        }
        if ports.is_empty() { Allowed::No } else { Allowed::OnlyOtherPorts(ports) }
    }
}

fn normalize_host(host: &str) -> String {
    let h = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match h.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => h.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// True when `entry` is a host the allow list can hold: a host name, an IP address or a
/// bracketed IPv6 address, optionally with `:port`.
pub fn is_allow_entry(entry: &str) -> bool {
    parse_entry(entry).is_some()
}

fn parse_entry(entry: &str) -> Option<AllowEntry> {
    let e = entry.trim();
    if e.is_empty() || e.len() > 260 {
        return None;
    }
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(AllowEntry { host: ip.to_string(), port: None });
    }
    if let Ok(sa) = e.parse::<SocketAddr>() {
        return Some(AllowEntry { host: sa.ip().to_string(), port: Some(sa.port()) });
    }
    if let Some(rest) = e.strip_prefix('[') {
        // `[v6]` without a port (`[v6]:port` parsed as a socket address above).
        let ip = rest.strip_suffix(']')?.parse::<Ipv6Addr>().ok()?;
        return Some(AllowEntry { host: ip.to_string(), port: None });
    }
    let (name, port) = match e.split_once(':') {
        Some((n, p)) => (n, Some(p.parse::<u16>().ok().filter(|p| *p > 0)?)),
        None => (e, None),
    };
    let name = name.trim_end_matches('.');
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then(|| AllowEntry { host: name.to_ascii_lowercase(), port })
}

/// The class of a forbidden address, or `None` for a public unicast address. Covers IPv4
/// loopback, link-local (the metadata service at 169.254.169.254), private, carrier-grade NAT,
/// multicast, unspecified, broadcast, documentation and other reserved ranges; IPv6 loopback,
/// link-local, unique local, multicast, documentation, everything outside global unicast
/// (2000::/3); and IPv4 addresses embedded in IPv6 (mapped, compatible, NAT64, 6to4).
pub fn is_forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => v4_class(a),
        IpAddr::V6(a) => v6_class(a),
    }
}

const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// The AWS instance metadata service over IPv6 (Nitro).
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// IPv4 networks (address, prefix length, class), first match wins.
const V4_RANGES: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "unspecified (0.0.0.0/8, this network)"),
    ([10, 0, 0, 0], 8, "private"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT (shared address space)"),
    ([127, 0, 0, 0], 8, "loopback"),
    ([169, 254, 0, 0], 16, "link-local"),
    ([172, 16, 0, 0], 12, "private"),
    ([192, 0, 0, 0], 24, "reserved (IETF protocol assignments)"),
    ([192, 0, 2, 0], 24, "documentation"),
    ([192, 88, 99, 0], 24, "reserved (6to4 relay anycast)"),
    ([192, 168, 0, 0], 16, "private"),
    ([198, 18, 0, 0], 15, "reserved (benchmarking)"),
    ([198, 51, 100, 0], 24, "documentation"),
    ([203, 0, 113, 0], 24, "documentation"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([255, 255, 255, 255], 32, "broadcast"),
    ([240, 0, 0, 0], 4, "reserved"),
];

fn v4_class(a: Ipv4Addr) -> Option<&'static str> {
    if a == METADATA_V4 {
        return Some("link-local (the cloud metadata service)");
    }
    let n = u32::from(a);
    V4_RANGES.iter().find(|(net, bits, _)| n >> (32 - bits) == u32::from_be_bytes(*net) >> (32 - bits)).map(|r| r.2)
}

fn v6_in(a: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let (n, m) = (u128::from(a), u128::from(Ipv6Addr::from(net)));
    n >> (128 - bits) == m >> (128 - bits)
}

fn embedded_v4(a: Ipv6Addr, shift: u32) -> Ipv4Addr {
    Ipv4Addr::from(((u128::from(a) >> shift) & 0xffff_ffff) as u32)
}

fn v6_class(a: Ipv6Addr) -> Option<&'static str> {
    if a.is_unspecified() {
        return Some("unspecified");
    }
    if a.is_loopback() {
        return Some("loopback");
    }
    if a == METADATA_V6 {
        return Some("private (the cloud metadata service)");
    }
    // ::ffff:a.b.c.d reaches a.b.c.d on a dual-stack socket: judge the IPv4 address.
    if v6_in(a, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96) {
        return v4_class(embedded_v4(a, 0));
    }
    // ::a.b.c.d (deprecated IPv4-compatible form): never legitimate today.
    if v6_in(a, [0; 8], 96) {
        return v4_class(embedded_v4(a, 0)).or(Some("reserved (IPv4-compatible IPv6)"));
    }
    // NAT64 well-known prefix: a gateway forwards to the embedded IPv4 address.
    if v6_in(a, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return v4_class(embedded_v4(a, 0));
    }
    if v6_in(a, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48) {
        return Some("private (local-use NAT64)");
    }
    // 6to4: 2002:AABB:CCDD::/48 relays to AA.BB.CC.DD.
    if v6_in(a, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return v4_class(embedded_v4(a, 80));
    }
    const RANGES: &[([u16; 8], u32, &str)] = &[
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "private (site-local)"),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "private (unique local)"),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
        ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation"),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "reserved (Teredo)"),
        ([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48, "reserved (benchmarking)"),
        ([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, "reserved (ORCHID)"),
        ([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, "reserved (ORCHIDv2)"),
        ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64, "reserved (discard-only)"),
    ];
    if let Some((_, _, class)) = RANGES.iter().find(|(net, bits, _)| v6_in(a, *net, *bits)) {
        return Some(class);
    }
    if !v6_in(a, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some("reserved (not global unicast)");
    }
    None
}

/// A request the outbound policy refused. Recognise it in a `reqwest::Error` with
/// [`guard_error`]; it is never worth another attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The host is, or resolves to, a forbidden address.
    #[error("{}", forbidden_message(host, addr, class))]
    ForbiddenAddress { host: String, addr: IpAddr, class: &'static str },
    /// The host is allow-listed, but only with other ports.
    #[error(
        "{host} is in the tenant's allowed_hosts only with port {}, not {port}; add {host}:{port} to deliver there",
        join_ports(allowed)
    )]
    PortNotAllowed { host: String, port: u16, allowed: Vec<u16> },
    /// Not http or https.
    #[error("the scheme {scheme:?} is not allowed; allowed are http and https")]
    Scheme { scheme: String },
    /// A URL without a host.
    #[error("the URL has no host")]
    NoHost,
    /// More than [`MAX_REDIRECTS`] hops.
    #[error("more than {max} redirects")]
    TooManyRedirects { max: usize },
    /// A redirect hop refused for one of the reasons above.
    #[error("redirect to {location}: {reason}")]
    Redirect { location: String, reason: Box<GuardError> },
}

fn forbidden_message(host: &str, addr: &IpAddr, class: &str) -> String {
    if normalize_host(host) == addr.to_string() {
        format!("the address {addr} is {class}; allow the host in the tenant's allowed_hosts to deliver there")
    } else {
        format!("{host} resolves to {addr}, which is {class}; allow {host} in the tenant's allowed_hosts to deliver there")
    }
}

fn join_ports(ports: &[u16]) -> String {
    ports.iter().map(u16::to_string).collect::<Vec<_>>().join(" or ")
}

/// The [`GuardError`] behind an error, if the outbound policy caused it (it may sit several
/// sources deep inside a `reqwest::Error`).
pub fn guard_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a GuardError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    // Bounded: error chains are short; a cycle would be a bug elsewhere.
    for _ in 0..32 {
        let e = cur?;
        if let Some(g) = e.downcast_ref::<GuardError>() {
            return Some(g);
        }
        cur = e.source();
    }
    None
}

/// A URL for messages and receipts: scheme, host, port and path, without user info, query or
/// fragment (those may hold tokens).
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The host of a URL as an IP address, when it is a literal.
fn literal_ip(host: &str) -> Option<IpAddr> {
    let h = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    h.parse().ok()
}

/// The static checks of a URL, before any request and on every redirect: scheme, host, an
/// IP-literal host in a forbidden class, a host allow-listed only with other ports. Host names
/// are checked by the resolver when they are looked up.
pub fn check_url(allow: &AllowList, url: &Url) -> Result<(), GuardError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(GuardError::Scheme { scheme: url.scheme().to_string() });
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or(GuardError::NoHost)?;
    let port = url.port_or_known_default().unwrap_or(80);
    let normalized = normalize_host(host);
    match allow.lookup(&normalized, port) {
        Allowed::Yes => Ok(()),
        Allowed::OnlyOtherPorts(allowed) => Err(GuardError::PortNotAllowed { host: normalized, port, allowed }),
        Allowed::No => match literal_ip(host).and_then(|ip| is_forbidden(ip).map(|c| (ip, c))) {
            Some((addr, class)) => Err(GuardError::ForbiddenAddress { host: normalized, addr, class }),
            None => Ok(()),
        },
    }
}

/// Which redirects a guarded client follows (each hop is checked like the first URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Follow every redirect (for GET requests).
    Follow,
    /// Follow only 307 and 308, which keep the method and body; a 301, 302 or 303 (which would
    /// turn a POST into a GET and could yield a 2xx that received nothing) is returned as is.
    KeepMethod,
    /// Never follow; redirects are returned as is.
    None,
}

/// Settings of a guarded client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// Time to resolve and connect (TCP and TLS).
    pub connect_timeout: Duration,
    pub redirects: Redirects,
}

/// A resolver that refuses a name when any of its addresses is forbidden, unless the tenant
/// allowed the name.
struct GuardedResolver {
    allow: Arc<AllowList>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let allow = self.allow.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow.names_host(&host) {
                for a in &addrs {
                    if let Some(class) = is_forbidden(a.ip()) {
                        let err = GuardError::ForbiddenAddress { host: normalize_host(&host), addr: a.ip(), class };
                        return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
                    }
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client under the outbound policy: its resolver refuses forbidden addresses of names
/// not in `allow`, and its redirect policy checks every hop with [`check_url`] (at most
/// [`MAX_REDIRECTS`]). System proxies are ignored (a proxy would resolve names itself).
///
/// The client cannot see IP-literal hosts in the resolver: call [`check_url`] on each URL
/// before its first request.
pub fn guarded_client(allow: &AllowList, options: &ClientOptions) -> Result<reqwest::Client, reqwest::Error> {
    let allow = Arc::new(allow.clone());
    let policy_allow = allow.clone();
    let rule = options.redirects;
    let policy = redirect::Policy::custom(move |attempt| {
        if rule == Redirects::None {
            return attempt.stop();
        }
        let location = redact_url(attempt.url());
        if attempt.previous().len() > MAX_REDIRECTS {
            let reason = Box::new(GuardError::TooManyRedirects { max: MAX_REDIRECTS });
            return attempt.error(GuardError::Redirect { location, reason });
        }
        if let Err(reason) = check_url(&policy_allow, attempt.url()) {
            return attempt.error(GuardError::Redirect { location, reason: Box::new(reason) });
        }
        let keeps_method = matches!(attempt.status().as_u16(), 307 | 308);
        if rule == Redirects::KeepMethod && !keeps_method { attempt.stop() } else { attempt.follow() }
    });
    reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow }))
        .redirect(policy)
        .referer(false)
        .connect_timeout(options.connect_timeout)
        .user_agent(concat!("egress/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forbidden_address_classes() {
        let table: &[(&str, Option<&str>)] = &[
            ("127.0.0.1", Some("loopback")),
            ("127.255.1.2", Some("loopback")),
            ("169.254.169.254", Some("link-local (the cloud metadata service)")),
            ("169.254.1.1", Some("link-local")),
            ("10.0.0.1", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("carrier-grade NAT (shared address space)")),
            ("100.100.100.200", Some("carrier-grade NAT (shared address space)")),
            ("224.0.0.1", Some("multicast")),
            ("239.255.255.250", Some("multicast")),
            ("0.0.0.0", Some("unspecified (0.0.0.0/8, this network)")),
            ("255.255.255.255", Some("broadcast")),
            ("240.0.0.1", Some("reserved")),
            ("192.0.2.5", Some("documentation")),
            ("198.18.0.1", Some("reserved (benchmarking)")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fe80::1", Some("link-local")),
            ("febf::1", Some("link-local")),
            ("fc00::1", Some("private (unique local)")),
            ("fd12:3456::1", Some("private (unique local)")),
            ("fd00:ec2::254", Some("private (the cloud metadata service)")),
            ("ff02::1", Some("multicast")),
            ("2001:db8::1", Some("documentation")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("link-local (the cloud metadata service)")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::127.0.0.1", Some("loopback")),
            ("::8.8.8.8", Some("reserved (IPv4-compatible IPv6)")),
            ("64:ff9b::a9fe:a9fe", Some("link-local (the cloud metadata service)")),
            ("64:ff9b::7f00:1", Some("loopback")),
            ("2002:7f00:1::1", Some("loopback")),
            ("2002:c0a8:101::1", Some("private")),
            ("2001:0:4136:e378::1", Some("reserved (Teredo)")),
            ("100::1", Some("reserved (discard-only)")),
            ("4000::1", Some("reserved (not global unicast)")),
            // Public addresses pass.
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("169.255.0.1", None),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", None),
            ("2002:808:808::1", None),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001::200e", None),
        ];
        for (addr, class) in table {
            assert_eq!(is_forbidden(ip(addr)), *class, "{addr}");
        }
    }

    #[test]
    fn allow_list_entries_parse_and_match() {
        let allow = AllowList::new(["Hooks.Internal", "api.example:8443", "10.0.0.7", "[fd00::7]:443", "127.0.0.1:9000", "::1"]).unwrap();
        assert!(allow.permits("hooks.internal", 80));
        assert!(allow.permits("HOOKS.INTERNAL.", 1234));
        assert!(allow.permits("api.example", 8443));
        assert!(!allow.permits("api.example", 443));
        assert!(allow.permits("10.0.0.7", 1));
        assert!(allow.permits("[fd00::7]", 443));
        assert!(allow.permits("fd00:0::7", 443));
        assert!(!allow.permits("fd00::7", 80));
        assert!(allow.permits("127.0.0.1", 9000));
        assert!(!allow.permits("127.0.0.1", 9001));
        assert!(allow.permits("[::1]", 5));
        assert!(!allow.permits("other.internal", 80));
        assert!(!allow.permits("sub.hooks.internal", 80));
    }

    #[test]
    fn allow_list_refuses_bad_entries() {
        for bad in ["", "http://x", "a b", "host:0", "host:99999", "*.example", "[::1", "-x.example"] {
            let err = AllowList::new([bad]).unwrap_err();
            assert!(err.contains("host name or IP address"), "{bad}: {err}");
        }
    }

    #[test]
    fn check_url_refuses_literals_and_other_ports() {
        let none = AllowList::empty();
        let url = |s: &str| Url::parse(s).unwrap();
        let err = check_url(&none, &url("http://169.254.169.254/latest/meta-data?x=1")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the address 169.254.169.254 is link-local (the cloud metadata service); allow the host in the tenant's allowed_hosts to deliver there"
        );
        // Numeric forms are normalised by the URL parser before the check.
        assert!(matches!(check_url(&none, &url("http://2130706433/")), Err(GuardError::ForbiddenAddress { .. })));
        assert!(matches!(check_url(&none, &url("http://0x7f.1/")), Err(GuardError::ForbiddenAddress { .. })));
        assert!(matches!(check_url(&none, &url("http://[::ffff:127.0.0.1]/")), Err(GuardError::ForbiddenAddress { .. })));
        assert!(matches!(check_url(&none, &url("ftp://example.com/")), Err(GuardError::Scheme { .. })));
        assert!(check_url(&none, &url("https://example.com/hook")).is_ok());
        let allow = AllowList::new(["127.0.0.1:9000", "hooks.internal:8443"]).unwrap();
        assert!(check_url(&allow, &url("http://127.0.0.1:9000/")).is_ok());
        assert!(matches!(check_url(&allow, &url("http://127.0.0.1:9001/")), Err(GuardError::PortNotAllowed { .. })));
        let err = check_url(&allow, &url("https://hooks.internal/")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hooks.internal is in the tenant's allowed_hosts only with port 8443, not 443; add hooks.internal:443 to deliver there"
        );
    }

    #[test]
    fn redacted_urls_lose_credentials_query_and_fragment() {
        let u = Url::parse("https://user:pw@example.com:8443/a/b?token=x#f").unwrap();
        assert_eq!(redact_url(&u), "https://example.com:8443/a/b");
    }

    #[tokio::test]
    async fn resolver_refuses_names_of_forbidden_addresses() {
        let r = GuardedResolver { allow: Arc::new(AllowList::empty()) };
        let err = r.resolve("localhost".parse().unwrap()).await.err().expect("localhost refused");
        let g = guard_error(err.as_ref()).expect("a guard error");
        assert!(matches!(g, GuardError::ForbiddenAddress { class: "loopback", .. }), "{g}");
        assert!(g.to_string().starts_with("localhost resolves to "), "{g}");
        let r = GuardedResolver { allow: Arc::new(AllowList::new(["LOCALHOST:8080"]).unwrap()) };
        let addrs: Vec<_> = r.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
