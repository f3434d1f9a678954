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
    /// The client's address: the first address of the configured client IP header when
    /// there is one and it parses, else the socket's peer address (`0.0.0.0` when the router
    /// is served without connection info).
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

/// The first address in a forwarding header such as `X-Forwarded-For: client, proxy1`,
/// with or without a port.
fn forwarded_address(headers: &HeaderMap, header: &HeaderName) -> Option<IpAddr> {
    let value = headers.get(header)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    first
        .parse::<IpAddr>()
        .ok()
        .or_else(|| first.parse::<SocketAddr>().ok().map(|address| address.ip()))
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        let ip = state
            .config
            .client_ip_header
            .as_ref()
            .and_then(|header| forwarded_address(&parts.headers, header))
            .unwrap_or(peer)
            .to_canonical();
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
    fn the_first_forwarded_address_is_the_client() {
        let header = HeaderName::from_static("x-forwarded-for");
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("10.1.2.7, 192.0.2.1", Some("10.1.2.7")),
            (" 2001:db8::1 ", Some("2001:db8::1")),
            ("10.1.2.7:4711", Some("10.1.2.7")),
            ("unknown", None),
        ] {
            headers.insert(&header, HeaderValue::from_static(value));
            let found = forwarded_address(&headers, &header);
            assert_eq!(found, expected.map(|text| text.parse().unwrap()), "{value}");
        }
    }
}
