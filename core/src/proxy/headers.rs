//! The headers the proxy changes on the way through, and nothing else: hop-by-hop headers
//! (those of one connection, RFC 9110 §7.6.1) are dropped both ways, and the browser's view of
//! the request goes to the app in `X-Forwarded-For/-Proto/-Host/-Prefix`.
//!
//! `Host` stays the one the browser sent (and equals `X-Forwarded-Host`), so the app sees one
//! consistent host whichever header it reads: the absolute URLs it builds, the Origin checks of
//! its CSRF protection and the domains of its cookies all agree with the browser. Only a
//! request without a host (HTTP/1.0) gets the app's own address. previewd is the edge here: the
//! forwarded headers a client sends are replaced with what previewd saw, except
//! `X-Forwarded-For`, a chain, which gets the client's address appended.

use std::net::IpAddr;

use poem::http::header::{
    CONNECTION, EXPECT, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use poem::http::{HeaderMap, HeaderName, HeaderValue};

/// `X-Forwarded-For`: the chain of client addresses.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`: the scheme the client used.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`: the host the client asked for.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Prefix`: the path the app is served under, `/preview/<id>`.
pub const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// Headers that belong to one connection. `Expect: 100-continue` is answered by previewd's own
/// server, so it is not asked again of the app.
const HOP_BY_HOP: [HeaderName; 10] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    EXPECT,
];

/// Removes the hop-by-hop headers and those the `Connection` header names. With `upgrade`
/// (a protocol switch being asked for or accepted), `Upgrade` stays and `Connection` says
/// `upgrade`, which is all of `Connection` that may pass.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        if !(upgrade && name == UPGRADE) {
            headers.remove(name);
        }
    }
    if upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// What previewd saw of a request, for the app.
#[derive(Debug)]
pub struct Forwarded<'a> {
    /// The client's address.
    pub client: Option<IpAddr>,
    /// The scheme the client used (`http`, or `https` when previewd serves TLS).
    pub proto: &'a str,
    /// The host the client asked for (its `Host` header or the URI's authority).
    pub host: Option<HeaderValue>,
    /// `/preview/<id>`.
    pub prefix: &'a str,
}

/// Sets `Host` (the client's, else `upstream`, the app's address) and the `X-Forwarded-*`
/// headers from `forwarded`.
pub fn set_forwarded(headers: &mut HeaderMap, upstream: &HeaderValue, forwarded: Forwarded<'_>) {
    let host = forwarded.host.as_ref().unwrap_or(upstream);
    headers.insert(HOST, host.clone());
    if let Some(client) = forwarded.client {
        let chain: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let value = match chain.is_empty() {
            true => client.to_string(),
            false => format!("{}, {client}", chain.join(", ")),
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    if let Ok(proto) = HeaderValue::from_str(forwarded.proto) {
        headers.insert(X_FORWARDED_PROTO, proto);
    }
    match forwarded.host {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(X_FORWARDED_HOST),
    };
    match HeaderValue::from_str(forwarded.prefix) {
        Ok(prefix) => headers.insert(X_FORWARDED_PREFIX, prefix),
        Err(_) => headers.remove(X_FORWARDED_PREFIX),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    /// Hop-by-hop headers and the ones `Connection` names go; end-to-end headers stay.
    #[test]
    fn hop_by_hop_removed() {
        let mut map = headers(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("x-secret-hop", "1"),
            ("upgrade", "websocket"),
            ("content-type", "text/plain"),
            ("content-length", "3"),
            ("authorization", "Bearer app"),
        ]);
        remove_hop_by_hop(&mut map, false);
        let mut left: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["authorization", "content-length", "content-type"]);
    }

    /// A protocol switch keeps `Upgrade` and a `Connection: upgrade` of its own.
    #[test]
    fn upgrade_kept_when_switching() {
        let mut map = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        remove_hop_by_hop(&mut map, true);
        assert_eq!(map["upgrade"], "websocket");
        assert_eq!(map["connection"], "upgrade");
        assert_eq!(map["sec-websocket-key"], "k");
    }

    /// The client's forwarded headers are replaced, except the address chain, which grows.
    #[test]
    fn forwarded_headers() {
        let mut map = headers(&[
            ("host", "previewd.example"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-prefix", "/elsewhere"),
        ]);
        set_forwarded(
            &mut map,
            &HeaderValue::from_static("127.0.0.1:3001"),
            Forwarded {
                client: Some("192.0.2.7".parse().unwrap()),
                proto: "http",
                host: Some(HeaderValue::from_static("previewd.example")),
                prefix: "/preview/p1",
            },
        );
        assert_eq!(map["host"], "previewd.example");
        assert_eq!(map["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(map["x-forwarded-proto"], "http");
        assert_eq!(map["x-forwarded-host"], "previewd.example");
        assert_eq!(map["x-forwarded-prefix"], "/preview/p1");

        let mut map = headers(&[("x-forwarded-host", "evil.example")]);
        set_forwarded(
            &mut map,
            &HeaderValue::from_static("127.0.0.1:3001"),
            Forwarded {
                client: None,
                proto: "http",
                host: None,
                prefix: "/preview/p1",
            },
        );
        assert_eq!(map["host"], "127.0.0.1:3001", "no host: the app's address");
        assert!(!map.contains_key("x-forwarded-host"));
    }
}
