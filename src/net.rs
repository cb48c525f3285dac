//! Which address a request came from, for throttling and the audit log.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The reverse proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default)]
pub struct ClientAddresses {
    trusted: Vec<IpNet>,
}

impl ClientAddresses {
    pub fn new(trusted: Vec<IpNet>) -> ClientAddresses {
        ClientAddresses { trusted }
    }

    /// The peer, or, when the peer is a trusted proxy, the nearest address in
    /// `X-Forwarded-For` that is not one of our proxies.
    pub fn client_ip(&self, req: &HttpRequest) -> IpAddr {
        let peer = req
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let trusted = |ip: &IpAddr| self.trusted.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        // Walk from the right: each trusted proxy appended the address it saw, so the first
        // address that is not one of ours is the client. Anything left of it is the client's
        // own claim; an unparsable entry ends the walk.
        let mut nearest_trusted = None;
        let entries = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for entry in entries.iter().rev() {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) if !trusted(&ip) => return ip,
                Ok(ip) => nearest_trusted = Some(ip),
                Err(_) => break,
            }
        }
        nearest_trusted.unwrap_or(peer)
    }
}
