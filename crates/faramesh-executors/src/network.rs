//! Where the `http` executor may connect. A policy decides on names and URLs; it cannot see
//! that `localhost`, `169.254.169.254` or a name an attacker points at `10.0.0.5` lead back
//! into the gatekeeper's own network. So the executor refuses every inward address itself,
//! after resolution, unless `FARAMESH_HTTP_ALLOWED_NETWORKS` lists it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use ipnet::{IpNet, Ipv4Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The environment variable that lists the inward networks the `http` executor may reach.
pub const ALLOWED_NETWORKS_VAR: &str = "FARAMESH_HTTP_ALLOWED_NETWORKS";

/// Networks the `http` executor may reach although they are inward (loopback, private,
/// link-local, ...). Public addresses need no entry: the policy governs those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedNetworks {
    networks: Vec<IpNet>,
}

/// A `FARAMESH_HTTP_ALLOWED_NETWORKS` entry that is neither a CIDR network nor an IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "entry {entry:?} is not an IP network or address; write CIDR networks or single addresses \
     separated by commas, e.g. 127.0.0.1/32,10.0.0.0/8,fd00::/8"
)]
pub struct NetworkListError {
    pub entry: String,
}

impl AllowedNetworks {
    /// No inward network is reachable (the default).
    pub fn none() -> AllowedNetworks {
        AllowedNetworks::default()
    }

    /// Parses a comma-separated list of CIDR networks (`10.0.0.0/8`) or single addresses
    /// (`127.0.0.1`, `::1`). Blank entries are ignored; any other unreadable entry is an error
    /// naming it, because silently dropping it would leave a service unreachable without a
    /// clue, or worse, make the operator believe a list is in force that is not.
    pub fn parse(text: &str) -> Result<AllowedNetworks, NetworkListError> {
        let mut networks = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let network = match IpNet::from_str(entry) {
                Ok(network) => network.trunc(),
                Err(_) => match IpAddr::from_str(entry) {
                    Ok(addr) => IpNet::from(addr),
                    Err(_) => {
                        return Err(NetworkListError {
                            entry: entry.to_owned(),
                        })
                    }
                },
            };
            networks.push(network);
        }
        Ok(AllowedNetworks { networks })
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    fn lists(&self, addr: IpAddr) -> bool {
        self.networks.iter().any(|network| network.contains(&addr))
    }

    /// Whether the executor may connect to `addr`: `Err` says which kind of inward address it
    /// is. An address embedding an IPv4 address (`::ffff:127.0.0.1`) is judged by both forms,
    /// so either may be listed.
    pub fn check(&self, addr: IpAddr) -> Result<(), InwardKind> {
        let Some(kind) = inward_kind(addr) else {
            return Ok(());
        };
        let embedded = match addr {
            IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        if self.lists(addr) || embedded.is_some_and(|v4| self.lists(v4)) {
            Ok(())
        } else {
            Err(kind)
        }
    }
}

impl fmt::Display for AllowedNetworks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.networks.is_empty() {
            return f.write_str("none");
        }
        for (i, network) in self.networks.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{network}")?;
        }
        Ok(())
    }
}

/// Why an address counts as inward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InwardKind {
    Unspecified,
    Loopback,
    LinkLocal,
    Private,
    SharedCgnat,
    Multicast,
    Reserved,
}

impl fmt::Display for InwardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InwardKind::Unspecified => "an unspecified (\"this host\") address",
            InwardKind::Loopback => "a loopback address",
            InwardKind::LinkLocal => "a link-local address (where cloud metadata services live)",
            InwardKind::Private => "a private-network address",
            InwardKind::SharedCgnat => "a carrier-grade NAT (100.64.0.0/10) address",
            InwardKind::Multicast => "a multicast address",
            InwardKind::Reserved => "a reserved or broadcast address",
        })
    }
}

/// The kind of inward address `addr` is, or `None` for an address the policy alone governs.
pub fn inward_kind(addr: IpAddr) -> Option<InwardKind> {
    match addr {
        IpAddr::V4(v4) => inward_v4(v4),
        IpAddr::V6(v6) => inward_v6(v6),
    }
}

fn v4net(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    // The prefixes below are all <= 32; the fallback is never taken.
    Ipv4Net::new(Ipv4Addr::new(a, b, c, d), prefix).unwrap_or_default()
}

fn inward_v4(v4: Ipv4Addr) -> Option<InwardKind> {
    let table = [
        (v4net(0, 0, 0, 0, 8), InwardKind::Unspecified),
        (v4net(127, 0, 0, 0, 8), InwardKind::Loopback),
        (v4net(169, 254, 0, 0, 16), InwardKind::LinkLocal),
        (v4net(10, 0, 0, 0, 8), InwardKind::Private),
        (v4net(172, 16, 0, 0, 12), InwardKind::Private),
        (v4net(192, 168, 0, 0, 16), InwardKind::Private),
        (v4net(100, 64, 0, 0, 10), InwardKind::SharedCgnat),
        (v4net(224, 0, 0, 0, 4), InwardKind::Multicast),
        // 240.0.0.0/4 holds the limited broadcast address 255.255.255.255.
        (v4net(240, 0, 0, 0, 4), InwardKind::Reserved),
    ];
    table
        .iter()
        .find(|(network, _)| network.contains(&v4))
        .map(|(_, kind)| *kind)
}

fn inward_v6(v6: Ipv6Addr) -> Option<InwardKind> {
    if v6.is_unspecified() {
        return Some(InwardKind::Unspecified);
    }
    if v6.is_loopback() {
        return Some(InwardKind::Loopback);
    }
    // An IPv6 form of an IPv4 address reaches that IPv4 address, so it is judged as one.
    if let Some(v4) = embedded_ipv4(v6) {
        return inward_v4(v4);
    }
    let segment = v6.segments()[0];
    let in_prefix = |net: u16, mask: u16| segment & mask == net;
    if in_prefix(0xfe80, 0xffc0) {
        Some(InwardKind::LinkLocal)
    } else if in_prefix(0xfec0, 0xffc0) || in_prefix(0xfc00, 0xfe00) {
        // Deprecated site-local fec0::/10 and unique local fc00::/7 are both private.
        Some(InwardKind::Private)
    } else if in_prefix(0xff00, 0xff00) {
        Some(InwardKind::Multicast)
    } else {
        None
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`)
/// or NAT64 well-known-prefix (`64:ff9b::a.b.c.d`) IPv6 address. Each of these can carry a
/// connection to the embedded IPv4 address.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let o = v6.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    let compatible = s[..6].iter().all(|&x| x == 0);
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0);
    // `::` and `::1` are IPv6's own unspecified and loopback addresses (handled before).
    if (compatible && !v6.is_unspecified() && !v6.is_loopback()) || nat64 {
        Some(low)
    } else {
        None
    }
}

/// The error text for a refused address: it names the host, the address and the setting.
pub(crate) fn refusal(host: &str, addr: IpAddr, kind: InwardKind) -> String {
    // `::7f00:1` hides that it means 127.0.0.1; say so.
    let carried = match addr {
        IpAddr::V6(v6) => embedded_ipv4(v6)
            .filter(|v4| !addr.to_string().ends_with(&v4.to_string()))
            .map(|v4| format!(" (IPv4 {v4})"))
            .unwrap_or_default(),
        IpAddr::V4(_) => String::new(),
    };
    format!(
        "refused to connect to {host} at {addr}{carried}: it is {kind}, which the http executor \
         does not reach by default; if this service is meant to be reachable, add {addr} (or its \
         network) to {ALLOWED_NETWORKS_VAR}"
    )
}

/// A DNS resolver that hands the HTTP client only permitted addresses. The client connects to
/// exactly what this returns, so the check cannot be undone by the name resolving differently
/// a moment later (DNS rebinding).
pub(crate) struct GuardedResolver {
    allowed: AllowedNetworks,
    /// Why the last resolution was refused, for an error text that says more than the
    /// client's "error sending request".
    refused: Arc<Mutex<Option<String>>>,
}

impl GuardedResolver {
    pub(crate) fn new(allowed: AllowedNetworks) -> (GuardedResolver, Arc<Mutex<Option<String>>>) {
        let refused = Arc::new(Mutex::new(None));
        (
            GuardedResolver {
                allowed,
                refused: refused.clone(),
            },
            refused,
        )
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        let refused = self.refused.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut permitted = Vec::new();
            let mut first_refusal = None;
            for addr in resolved {
                match allowed.check(addr.ip()) {
                    Ok(()) => permitted.push(addr),
                    Err(kind) => {
                        first_refusal.get_or_insert_with(|| refusal(&host, addr.ip(), kind));
                    }
                }
            }
            if permitted.is_empty() {
                let message =
                    first_refusal.unwrap_or_else(|| format!("{host} resolved to no addresses"));
                *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
                return Err(message.into());
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn inward_addresses_are_classified() {
        for (addr, kind) in [
            ("0.0.0.0", InwardKind::Unspecified),
            ("127.0.0.1", InwardKind::Loopback),
            ("127.255.0.9", InwardKind::Loopback),
            ("169.254.169.254", InwardKind::LinkLocal),
            ("10.1.2.3", InwardKind::Private),
            ("172.16.0.1", InwardKind::Private),
            ("172.31.255.255", InwardKind::Private),
            ("192.168.1.1", InwardKind::Private),
            ("100.64.0.1", InwardKind::SharedCgnat),
            ("100.127.255.255", InwardKind::SharedCgnat),
            ("224.0.0.1", InwardKind::Multicast),
            ("255.255.255.255", InwardKind::Reserved),
            ("::", InwardKind::Unspecified),
            ("::1", InwardKind::Loopback),
            ("fe80::1", InwardKind::LinkLocal),
            ("febf::1", InwardKind::LinkLocal),
            ("fc00::1", InwardKind::Private),
            ("fd12:3456::1", InwardKind::Private),
            ("ff02::1", InwardKind::Multicast),
            ("::ffff:127.0.0.1", InwardKind::Loopback),
            ("::ffff:169.254.169.254", InwardKind::LinkLocal),
            ("::ffff:10.0.0.1", InwardKind::Private),
            ("::127.0.0.1", InwardKind::Loopback),
            ("::192.168.0.1", InwardKind::Private),
            ("64:ff9b::127.0.0.1", InwardKind::Loopback),
            ("::ffff:0.0.0.0", InwardKind::Unspecified),
        ] {
            assert_eq!(inward_kind(ip(addr)), Some(kind), "{addr}");
        }
    }

    #[test]
    fn public_addresses_are_left_to_the_policy() {
        for addr in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(inward_kind(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn listed_networks_open_inward_addresses() {
        let allowed =
            AllowedNetworks::parse(" 127.0.0.1/32 , 10.0.0.0/8,,fd00::1 ").expect("valid");
        assert_eq!(allowed.to_string(), "127.0.0.1/32,10.0.0.0/8,fd00::1/128");
        assert_eq!(allowed.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(allowed.check(ip("10.200.0.1")), Ok(()));
        assert_eq!(allowed.check(ip("fd00::1")), Ok(()));
        assert_eq!(allowed.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(
            allowed.check(ip("127.0.0.2")),
            Err(InwardKind::Loopback),
            "only the listed address"
        );
        assert_eq!(
            allowed.check(ip("169.254.169.254")),
            Err(InwardKind::LinkLocal)
        );
        assert_eq!(AllowedNetworks::none().check(ip("93.184.216.34")), Ok(()));
    }

    #[test]
    fn host_bits_in_a_network_are_dropped() {
        let allowed = AllowedNetworks::parse("10.1.2.3/8").expect("valid");
        assert_eq!(allowed.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn bad_entries_are_named() {
        for (text, entry) in [
            ("127.0.0.1/32,localhost", "localhost"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("10.0.0", "10.0.0"),
            ("*", "*"),
        ] {
            let err = AllowedNetworks::parse(text).expect_err(text);
            assert_eq!(err.entry, entry);
            assert!(err.to_string().contains(entry), "{err}");
        }
        assert!(AllowedNetworks::parse(" , ").expect("blank").is_empty());
    }
}
