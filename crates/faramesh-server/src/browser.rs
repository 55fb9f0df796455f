//! What a web browser may do with this server.
//!
//! Without authentication any page the operator opens could otherwise drive the API from the
//! operator's browser: read pending actions with their approval tokens, approve and start them.
//! So an open server answers only requests addressed to a loopback name (or one listed in
//! `FARAMESH_ALLOWED_HOSTS`), which defeats DNS rebinding, and whose `Origin`, when a browser
//! sends one, is the server's own or a listed CORS origin. With authentication on, a page
//! cannot attach the bearer token by itself, so these checks are not needed.
//!
//! CORS is off unless `FARAMESH_CORS_ORIGINS` lists origins; `*` is refused at start while
//! authentication is off (see [`check_cors_setting`]).

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Paths a load balancer or orchestrator probes by IP address; they reveal nothing.
fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/ready")
}

/// Refuses, while authentication is off, requests addressed to a foreign host or sent by a
/// page of a foreign origin.
pub async fn guard_open_server(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.tokens.enabled() || is_probe(request.uri().path()) {
        return next.run(request).await;
    }
    if let Err(refusal) = check(
        request.headers(),
        request.uri(),
        &state.config.allowed_hosts,
        &state.config.cors_origins,
    ) {
        return refusal.into_response();
    }
    next.run(request).await
}

fn check(
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
    allowed_hosts: &[String],
    cors_origins: &[String],
) -> Result<(), ApiError> {
    // HTTP/1.1 requires Host; HTTP/2 carries it as the URI's authority.
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let Some(host) = host else {
        return Err(refused(
            "The request has no Host header; this server runs without authentication and answers only requests addressed to it by a loopback name".into(),
        ));
    };
    let name = host_name(host);
    if !is_loopback_name(name) && !allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(name)) {
        return Err(refused(format!(
            "Host {host:?} is not allowed: without authentication this server answers only loopback names (localhost, 127.0.0.1, [::1]); add the name to FARAMESH_ALLOWED_HOSTS, or better, set FARAMESH_TOKEN before exposing the server"
        )));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
        if !own_or_listed(origin, host, cors_origins) {
            return Err(refused(format!(
                "Origin {origin:?} may not use this server: without authentication only pages served by the server itself may call the API; list trusted origins in FARAMESH_CORS_ORIGINS, or set FARAMESH_TOKEN"
            )));
        }
    }
    Ok(())
}

/// Whether a page of `origin` may use the server: the server's own origin (the request's Host),
/// or one listed in `FARAMESH_CORS_ORIGINS`.
pub fn origin_allowed(
    headers: &axum::http::HeaderMap,
    origin: &str,
    cors_origins: &[String],
) -> bool {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    own_or_listed(origin.trim_end_matches('/'), host, cors_origins)
}

/// `origin` is `http(s)://<host>` (the server's own pages) or listed in `cors_origins`.
fn own_or_listed(origin: &str, host: &str, cors_origins: &[String]) -> bool {
    let own = !host.is_empty()
        && ["http://", "https://"].iter().any(|scheme| {
            origin.len() == scheme.len() + host.len()
                && origin
                    .get(..scheme.len())
                    .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
                && origin
                    .get(scheme.len()..)
                    .is_some_and(|h| h.eq_ignore_ascii_case(host))
        });
    own || cors_origins
        .iter()
        .any(|o| o != "*" && o.trim_end_matches('/') == origin)
}

fn refused(detail: String) -> ApiError {
    ApiError::Forbidden(detail)
}

/// The host name of a Host header value, without port, brackets or a final dot (compare it
/// without regard to case). Checked on every request, so it does not allocate.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.trim_end_matches('.')
}

fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.to_canonical().is_loopback())
}

/// A start-up error: `*` in `FARAMESH_CORS_ORIGINS` while no token protects the API.
pub fn check_cors_setting(origins: &[String], auth_enabled: bool) -> Result<(), String> {
    if !auth_enabled && origins.iter().any(|o| o == "*") {
        return Err("FARAMESH_CORS_ORIGINS=\"*\" would let every web page drive this server, and authentication is off; list the origins that may call it, or set FARAMESH_TOKEN".into());
    }
    for origin in origins.iter().filter(|o| *o != "*") {
        if HeaderValue::from_str(origin).is_err()
            || !(origin.starts_with("http://") || origin.starts_with("https://"))
        {
            return Err(format!(
                "FARAMESH_CORS_ORIGINS: {origin:?} is not an origin; write scheme://host[:port], e.g. https://dashboard.example.com"
            ));
        }
    }
    Ok(())
}

/// The CORS layer for the listed origins, or `None` when CORS is off.
pub fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("last-event-id"),
            ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, Uri};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn verdict(pairs: &[(&'static str, &str)], hosts: &[&str], origins: &[&str]) -> bool {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let origins: Vec<String> = origins.iter().map(|o| o.to_string()).collect();
        check(
            &headers(pairs),
            &Uri::from_static("/v1/actions"),
            &hosts,
            &origins,
        )
        .is_ok()
    }

    #[test]
    fn loopback_hosts_pass_and_rebound_names_do_not() {
        for host in [
            "127.0.0.1:8000",
            "localhost:8000",
            "[::1]:8000",
            "LOCALHOST.",
            "127.1.2.3",
        ] {
            assert!(verdict(&[("host", host)], &[], &[]), "{host}");
        }
        for host in [
            "attacker.example:8000",
            "10.0.0.5:8000",
            "localhost.attacker.example",
            "[::ffff:a00:5]",
        ] {
            assert!(!verdict(&[("host", host)], &[], &[]), "{host}");
        }
        assert!(verdict(
            &[("host", "gate.internal:8000")],
            &["gate.internal"],
            &[]
        ));
        assert!(!verdict(&[], &[], &[]), "no Host at all");
    }

    #[test]
    fn only_the_own_origin_or_a_listed_one_passes() {
        let host = ("host", "127.0.0.1:8000");
        assert!(verdict(
            &[host, ("origin", "http://127.0.0.1:8000")],
            &[],
            &[]
        ));
        assert!(!verdict(
            &[host, ("origin", "http://localhost:8000")],
            &[],
            &[]
        ));
        assert!(!verdict(
            &[host, ("origin", "https://evil.example")],
            &[],
            &[]
        ));
        assert!(!verdict(&[host, ("origin", "null")], &[], &[]));
        assert!(verdict(
            &[host, ("origin", "https://ui.example")],
            &[],
            &["https://ui.example"]
        ));
        assert!(!verdict(
            &[host, ("origin", "https://evil.example")],
            &[],
            &["*"]
        ));
    }

    #[test]
    fn a_wildcard_needs_authentication() {
        assert!(check_cors_setting(&["*".into()], false).is_err());
        assert!(check_cors_setting(&["*".into()], true).is_ok());
        assert!(check_cors_setting(&["https://a.example".into()], false).is_ok());
        assert!(check_cors_setting(&["a.example".into()], true).is_err());
    }
}
