//! The client's address: the peer's, or from `X-Forwarded-For` when the peer is a proxy named
//! in `CONDUIT_TRUSTED_PROXIES` (anyone else could write any address there).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::config::{IpNet, is_trusted_proxy};
use crate::error::ApiError;
use crate::state::AppState;

/// The address a request came from, for rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client address behind `peer`: the right-most `X-Forwarded-For` entry that is not itself
/// a trusted proxy, if `peer` is one; else `peer`. `forwarded_for` is every line of the header,
/// in order: a proxy that appends a line of its own (HAProxy's `option forwardfor`) leaves the
/// client's forged line first, so the walk from the right goes through every line.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| is_trusted_proxy(trusted, ip);
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.rev().flat_map(|line| line.rsplit(',')) {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The edge has found it already (for the per-address cap) on every served request.
        if let Some(client) = parts.extensions.get::<ClientIp>() {
            return Ok(*client);
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| ApiError::Internal("no peer address: serve with connect info".into()))?;
        // A line that is not text names no address: it ends the walk like any other such entry.
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("?"));
        Ok(ClientIp(client_ip(peer, forwarded, &state.http.trusted_proxies)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| crate::config::ip_net(s).unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_contain_their_addresses() {
        let trusted = |net: &str, addr: &str| is_trusted_proxy(&nets(&[net]), ip(addr));
        assert!(trusted("10.1.0.0/16", "10.1.200.3"));
        assert!(!trusted("10.1.0.0/16", "10.2.0.1"));
        assert!(trusted("127.0.0.1", "127.0.0.1"));
        assert!(!trusted("127.0.0.1", "127.0.0.2"));
        assert!(trusted("0.0.0.0/0", "8.8.8.8"));
        assert!(trusted("fd00::/8", "fd12::1"));
        assert!(trusted("10.0.0.0/8", "::ffff:10.3.4.5"));
        for bad in ["10.0.0.0/33", "nonsense", "1.2.3.4/x"] {
            assert!(crate::config::ip_net(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let header = || ["203.0.113.9, 198.51.100.7, 10.0.0.4"].into_iter();
        let trusted = nets(&["10.0.0.0/8"]);
        // An untrusted peer's header is ignored.
        assert_eq!(client_ip(peer, header(), &[]), peer);
        // Behind trusted proxies, the right-most untrusted hop is the client.
        assert_eq!(client_ip(peer, header(), &trusted), ip("198.51.100.7"));
        assert_eq!(client_ip(peer, std::iter::empty(), &trusted), peer);
        assert_eq!(client_ip(peer, ["garbage"].into_iter(), &trusted), peer);
    }

    /// A proxy that appends a line of its own leaves the client's forged line first: every line
    /// counts, the last one nearest.
    #[test]
    fn every_forwarded_for_line_counts_in_order() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        let lines = ["203.0.113.66", "198.51.100.7"];
        assert_eq!(client_ip(peer, lines.into_iter(), &trusted), ip("198.51.100.7"), "not the forged first line");
        let lines = ["203.0.113.66, 198.51.100.7", "10.0.0.4"];
        assert_eq!(client_ip(peer, lines.into_iter(), &trusted), ip("198.51.100.7"), "through a second proxy");
    }
}
