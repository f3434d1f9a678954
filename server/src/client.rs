//! Who is on the other end of a request: the client's IP address and user agent, and the
//! network (IPv4 /24, IPv6 /48) the address belongs to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

use crate::error::ApiError;
use crate::AppState;

/// Longest user agent kept, in characters; longer ones are cut.
pub const MAX_USER_AGENT_CHARS: usize = 256;
/// Prefix length of the network an IPv4 address belongs to.
pub const IPV4_NETWORK_PREFIX: u8 = 24;
/// Prefix length of the network an IPv6 address belongs to.
pub const IPV6_NETWORK_PREFIX: u8 = 48;

/// The client of a request. Extracting it never fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address: when the socket's peer is one of the trusted proxies and the
    /// configured client IP header is set, the rightmost address of the header that is not a
    /// trusted proxy ([`client_address`]); else the peer's address (`0.0.0.0` when the
    /// router is served without connection info).
    pub ip: IpAddr,
    /// The `User-Agent` header, at most [`MAX_USER_AGENT_CHARS`] characters; empty when
    /// missing or not UTF-8.
    pub user_agent: String,
}

impl ClientInfo {
    /// The network of the client's address (see [`network_of`]).
    pub fn network(&self) -> IpNet {
        network_of(self.ip)
    }
}

/// The network an address belongs to: its /24 for IPv4 (IPv4-mapped IPv6 addresses count
/// as IPv4), its /48 for IPv6.
pub fn network_of(ip: IpAddr) -> IpNet {
    let ip = ip.to_canonical();
    let prefix = match ip {
        IpAddr::V4(_) => IPV4_NETWORK_PREFIX,
        IpAddr::V6(_) => IPV6_NETWORK_PREFIX,
    };
    // The prefix lengths are within 0..=32 and 0..=128, so this cannot fail.
    IpNet::new(ip, prefix)
        .map(|network| network.trunc())
        .unwrap_or_else(|_| IpNet::from(ip))
}

/// One address of a forwarding header, with or without a port.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|address| address.ip()))
        .map(|address| address.to_canonical())
}

/// The client's address behind proxies. Each proxy appends the address it received the
/// request from to `X-Forwarded-For: client, proxy1, proxy2` (or the configured header), so
/// only the entries added by proxies this server trusts are reliable; everything to their
/// left may be made up by the client. Walking from the right (the peer first), the first
/// hop that is not a `trusted` proxy is the client, as `axum-client-ip`'s rightmost
/// strategies and the MDN guidance on `X-Forwarded-For` do. A peer that is not trusted is
/// the client whatever the header says; an entry that does not parse stops the walk at the
/// last trusted hop; a header of trusted proxies only gives its leftmost entry.
pub fn client_address(
    peer: IpAddr,
    headers: &HeaderMap,
    header: Option<&HeaderName>,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |address: &IpAddr| trusted.iter().any(|network| network.contains(address));
    let Some(value) = header
        .and_then(|header| headers.get(header))
        .and_then(|value| value.to_str().ok())
    else {
        return peer;
    };
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in value.rsplit(',') {
        let Some(address) = parse_hop(hop) else {
            return client;
        };
        client = address;
        if !is_trusted(&address) {
            return address;
        }
    }
    client
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        let ip = client_address(
            peer,
            &parts.headers,
            state.config.client_ip_header.as_ref(),
            &state.config.trusted_proxies,
        );
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(MAX_USER_AGENT_CHARS)
            .collect();
        Ok(Self { ip, user_agent })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn networks_are_slash_24_and_slash_48() {
        let cases = [
            ("10.1.2.7", "10.1.2.0/24"),
            ("::ffff:10.1.2.7", "10.1.2.0/24"),
            ("2001:db8:aaaa:bbbb::1", "2001:db8:aaaa::/48"),
        ];
        for (address, network) in cases {
            assert_eq!(network_of(address.parse().unwrap()).to_string(), network);
        }
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let header = HeaderName::from_static("x-forwarded-for");
        let trusted: Vec<IpNet> = vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            // A client cannot choose its address by writing one to the left.
            ("6.6.6.6, 198.51.100.7", "198.51.100.7"),
            ("6.6.6.6, 198.51.100.7, 10.0.0.9", "198.51.100.7"),
            (" 2001:db8::1 ", "2001:db8::1"),
            ("198.51.100.7:4711", "198.51.100.7"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            // Garbage stops the walk at the last trusted hop.
            ("unknown, 10.0.0.9", "10.0.0.9"),
            ("unknown", "10.0.0.2"),
            // Only trusted proxies: the leftmost of them.
            ("10.0.0.5, 10.0.0.9", "10.0.0.5"),
        ] {
            headers.insert(&header, HeaderValue::from_static(value));
            let found = client_address(proxy, &headers, Some(&header), &trusted);
            assert_eq!(found, expected.parse::<IpAddr>().unwrap(), "{value}");
        }
        // A peer that is not a trusted proxy is the client, whatever it claims.
        headers.insert(&header, HeaderValue::from_static("198.51.100.7"));
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            client_address(outsider, &headers, Some(&header), &trusted),
            outsider
        );
        // Without a configured header, the peer.
        assert_eq!(client_address(proxy, &headers, None, &trusted), proxy);
    }
}
