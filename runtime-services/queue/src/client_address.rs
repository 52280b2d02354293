//! The caller's address, which the per-address limits key on.
//!
//! Behind a proxy the socket peer is the proxy, so the whole crowd would
//! share one address. A proxy header is trusted only as far as the proxies
//! that wrote it: each proxy *appends* the address it saw to
//! `X-Forwarded-For`, so the entries a client wrote itself come first and
//! only the last `trusted_hops` entries were written by our own proxies. The
//! client's address is the entry `trusted_hops` from the right (1: the last
//! proxy's peer, as with one ingress-nginx in front). Taking the first entry,
//! as this service once did, lets every client pick its own address and walk
//! around the limit.
//!
//! `CloudFront-Viewer-Address` (`203.0.113.7:4711`, `2001:db8::1:4711`) holds
//! one address, written by CloudFront; it is trustworthy once the origin only
//! answers CloudFront (the origin secret, `URR_ORIGIN_SECRET`).

use std::net::{IpAddr, Ipv6Addr};

use axum::http::{HeaderMap, HeaderName};

/// Where the client address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddressSource {
    /// The proxy header; `None`: the socket peer.
    pub header: Option<HeaderName>,
    /// How many proxies of ours appended to the header (at least 1).
    pub trusted_hops: usize,
}

impl Default for ClientAddressSource {
    fn default() -> Self {
        Self {
            header: None,
            trusted_hops: 1,
        }
    }
}

impl ClientAddressSource {
    /// The client's address: from the header when configured and usable,
    /// else the socket peer, else `"unknown"` (all such callers share one limit).
    pub fn resolve(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> String {
        self.address_in_header(headers)
            .or(peer)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }

    fn address_in_header(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let name = self.header.as_ref()?;
        // Several header lines are one list, in order (RFC 9110, 5.3).
        let entries: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        // Fewer entries than trusted hops: every entry was written by one of
        // our proxies, and the first is the farthest one's peer.
        let index = entries.len().saturating_sub(self.trusted_hops.max(1));
        let entry = entries.get(index)?;
        if *name == CLOUDFRONT_VIEWER_ADDRESS {
            address_before_port(entry)
        } else {
            parse_address(entry)
        }
    }
}

/// CloudFront's header: always `address:port`, IPv6 without brackets.
pub const CLOUDFRONT_VIEWER_ADDRESS: HeaderName =
    HeaderName::from_static("cloudfront-viewer-address");

/// An entry of `X-Forwarded-For`-like headers: an address, or one with the
/// port some proxies append (`203.0.113.7:4711`, `[2001:db8::1]:4711`).
/// Anything else (a name, `unknown`, garbage) is `None`.
pub fn parse_address(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest
            .split_once(']')?
            .0
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6);
    }
    address_before_port(entry)
}

/// `address:port`, where a bare IPv6 address is followed by its port
/// (`2001:db8::1:4711` is `2001:db8::1`, port 4711, as CloudFront writes it).
fn address_before_port(entry: &str) -> Option<IpAddr> {
    let (address, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(header: &str, trusted_hops: usize) -> ClientAddressSource {
        ClientAddressSource {
            header: Some(HeaderName::from_bytes(header.as_bytes()).expect("header name")),
            trusted_hops,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        map
    }

    const PEER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9)));

    #[test]
    fn entries_parse_with_and_without_ports() {
        for (entry, address) in [
            ("203.0.113.7", "203.0.113.7"),
            ("203.0.113.7:4711", "203.0.113.7"),
            ("[2001:db8::1]:4711", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:db8:0:0:0:0:0:1:4711", "2001:db8::1"),
        ] {
            assert_eq!(
                parse_address(entry).map(|ip| ip.to_string()).as_deref(),
                Some(address),
                "{entry}"
            );
        }
        for garbage in ["", "unknown", "example.com", "1.2.3.4:99999", "[::1"] {
            assert_eq!(parse_address(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn a_client_written_first_entry_is_not_believed() {
        // The client sent `X-Forwarded-For: 1.1.1.1`; the ingress appended the
        // address it saw.
        let request = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.4")]);
        assert_eq!(
            source("X-Forwarded-For", 1).resolve(&request, PEER),
            "198.51.100.4"
        );
        // CloudFront, then an ALB: two of ours appended.
        let request = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.4, 130.176.0.1")]);
        assert_eq!(
            source("X-Forwarded-For", 2).resolve(&request, PEER),
            "198.51.100.4"
        );
    }

    #[test]
    fn several_header_lines_are_one_list() {
        let request = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(
            source("X-Forwarded-For", 1).resolve(&request, PEER),
            "198.51.100.4"
        );
    }

    #[test]
    fn fewer_entries_than_hops_take_the_farthest_proxy_peer() {
        let request = headers(&[("x-forwarded-for", "198.51.100.4")]);
        assert_eq!(
            source("X-Forwarded-For", 3).resolve(&request, PEER),
            "198.51.100.4"
        );
    }

    #[test]
    fn cloudfront_viewer_address_drops_the_port() {
        let src = source("CloudFront-Viewer-Address", 1);
        for (value, address) in [
            ("203.0.113.7:46532", "203.0.113.7"),
            // Also a valid IPv6 address on its own: CloudFront's last group is the port.
            ("2001:db8::1:4711", "2001:db8::1"),
            ("2001:db8::7:51234", "2001:db8::7"),
        ] {
            let request = headers(&[("cloudfront-viewer-address", value)]);
            assert_eq!(src.resolve(&request, PEER), address, "{value}");
        }
    }

    #[test]
    fn without_a_usable_header_the_peer_is_used() {
        let src = source("X-Forwarded-For", 1);
        assert_eq!(src.resolve(&HeaderMap::new(), PEER), "10.0.0.9");
        let request = headers(&[("x-forwarded-for", "not-an-address")]);
        assert_eq!(src.resolve(&request, PEER), "10.0.0.9");
        assert_eq!(
            ClientAddressSource::default().resolve(&request, PEER),
            "10.0.0.9",
            "no header configured: the header is ignored"
        );
        assert_eq!(src.resolve(&HeaderMap::new(), None), "unknown");
    }
}
