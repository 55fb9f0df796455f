//! The `url_host`, `url_scheme` and `url_port` conditions: `params.url` parsed as a WHATWG URL
//! (the parser HTTP clients use), so a policy sees the same host the request will reach,
//! whatever spelling the agent chose.
//!
//! Every host is reduced to one form before it is compared, in the URL and in the policy alike:
//! lower case, IDNA labels as punycode (`bücher.example` → `xn--bcher-kva.example`), one
//! trailing dot dropped, every IPv4 spelling (decimal `2852039166`, octal `0251.0376.0251.0376`,
//! hexadecimal `0xa9fea9fe`, short forms) as dotted decimal, IPv6 in its RFC 5952 form between
//! brackets, and an IPv4-mapped IPv6 address (`[::ffff:a9fe:a9fe]`) as the IPv4 address it
//! reaches.

use std::net::{IpAddr, Ipv6Addr};
use url::{Host, Url};

/// The parts of a URL that the url conditions compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    /// Lower case, as the parser gives it.
    pub scheme: String,
    /// The normalized host; `None` when the URL has none (`file:///etc/passwd`, `mailto:`).
    pub host: Option<String>,
    /// The port the request goes to: the explicit one, else the scheme's default (443 for
    /// https, 80 for http, ...); `None` for a scheme without a known default.
    pub port: Option<u16>,
}

impl UrlParts {
    /// Parses `text` as an absolute URL. Surrounding whitespace is ignored, as the HTTP
    /// executor ignores it, so that both read the same URL. `None` when it does not parse.
    pub fn parse(text: &str) -> Option<UrlParts> {
        let url = Url::parse(text.trim()).ok()?;
        let host = match url.host() {
            Some(host) => Some(normalize_host(host)?),
            None => None,
        };
        Some(UrlParts {
            scheme: url.scheme().to_owned(),
            host,
            port: url.port_or_known_default(),
        })
    }
}

/// The one form of a parsed host. `None` when a non-special URL's opaque host is not a valid
/// host (it then cannot be compared, and every host condition is false).
fn normalize_host(host: Host<&str>) -> Option<String> {
    match host {
        Host::Ipv4(address) => Some(address.to_string()),
        Host::Ipv6(address) => Some(ipv6_text(address)),
        // A special URL's domain is already lower-case punycode; an opaque host (a
        // non-special scheme) is not, so it goes through the same host parser. Re-parsing an
        // already normal domain gives it back unchanged.
        Host::Domain(domain) => match Host::parse(domain).ok()? {
            Host::Domain(domain) => {
                let domain = domain.strip_suffix('.').unwrap_or(&domain);
                (!domain.is_empty()).then(|| domain.to_owned())
            }
            Host::Ipv4(address) => Some(address.to_string()),
            Host::Ipv6(address) => Some(ipv6_text(address)),
        },
    }
}

/// An IPv6 address as text; an IPv4-mapped one (`::ffff:a.b.c.d`) is the IPv4 address,
/// because that is where a connection to it goes.
fn ipv6_text(address: Ipv6Addr) -> String {
    match address.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => format!("[{address}]"),
    }
}

/// One entry of `url_host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this host (normalized).
    Exact(String),
    /// `*.example.com`: any host strictly below `example.com`, not `example.com` itself.
    Subdomains(String),
}

impl HostPattern {
    /// Parses and normalizes a `url_host` entry the way hosts of URLs are normalized.
    pub fn parse(text: &str) -> Result<HostPattern, HostPatternError> {
        if text.is_empty() {
            return Err(HostPatternError::Empty);
        }
        if text.contains("://") {
            return Err(HostPatternError::Url);
        }
        let (wildcard, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if rest.contains('*') {
            return Err(HostPatternError::Wildcard);
        }
        if rest.contains(['/', '?', '#', '@', '\\']) {
            return Err(HostPatternError::NotAHost);
        }
        // An IPv6 literal may be written with or without its brackets; any other colon is a
        // port.
        let bracketed;
        let rest = if !rest.starts_with('[') && rest.contains(':') {
            if rest.parse::<Ipv6Addr>().is_err() {
                return Err(HostPatternError::Port);
            }
            bracketed = format!("[{rest}]");
            bracketed.as_str()
        } else {
            rest
        };
        let host = Host::parse(rest).map_err(|e| HostPatternError::Invalid(e.to_string()))?;
        let is_ip = !matches!(host, Host::Domain(_));
        let normal = normalize_host(match &host {
            Host::Domain(d) => Host::Domain(d.as_str()),
            Host::Ipv4(a) => Host::Ipv4(*a),
            Host::Ipv6(a) => Host::Ipv6(*a),
        })
        .ok_or(HostPatternError::Empty)?;
        match (wildcard, is_ip) {
            (true, true) => Err(HostPatternError::WildcardAddress),
            (true, false) => Ok(HostPattern::Subdomains(normal)),
            (false, _) => Ok(HostPattern::Exact(normal)),
        }
    }

    /// Whether the normalized `host` is covered.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(exact) => host == exact,
            HostPattern::Subdomains(parent) => {
                host.strip_suffix(parent.as_str())
                    .and_then(|below| below.strip_suffix('.'))
                    .is_some_and(|labels| !labels.is_empty())
                    // An IP address is never a subdomain, even if its text happens to end
                    // in the parent's labels.
                    && host.parse::<IpAddr>().is_err()
            }
        }
    }
}

/// Why a `url_host` entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPatternError {
    #[error("the host is empty")]
    Empty,
    #[error("this is a URL, not a host")]
    Url,
    #[error("`*` may only stand for the leading labels, as in `*.example.com`")]
    Wildcard,
    #[error("a host cannot hold `/`, `?`, `#`, `@` or `\\`")]
    NotAHost,
    #[error("a host cannot carry a port")]
    Port,
    #[error("a wildcard applies to domain names, not to IP addresses")]
    WildcardAddress,
    #[error("not a valid host name: {0}")]
    Invalid(String),
}

impl HostPatternError {
    /// What to write instead.
    pub fn hint(&self) -> &'static str {
        match self {
            HostPatternError::Empty => "write a host name such as `api.github.com`",
            HostPatternError::Url => {
                "write only the host, e.g. `api.github.com`; put the scheme in `url_scheme`"
            }
            HostPatternError::Wildcard => {
                "write `*.example.com` for every subdomain of example.com, or list the hosts"
            }
            HostPatternError::NotAHost => {
                "write only the host, e.g. `api.github.com`; paths can be checked with `fields: {params.url: {starts_with: ...}}`"
            }
            HostPatternError::Port => "write the host alone and the port in `url_port`",
            HostPatternError::WildcardAddress => "list the addresses one by one",
            HostPatternError::Invalid(_) => {
                "use letters, digits, `-` and `.` (international names are accepted and converted to punycode), an IPv4 address, or an IPv6 address in brackets"
            }
        }
    }
}

/// Checks a `url_scheme` entry and gives it in lower case.
pub fn parse_scheme(text: &str) -> Result<String, SchemeError> {
    let mut chars = text.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if valid {
        return Ok(text.to_ascii_lowercase());
    }
    match text
        .strip_suffix("://")
        .or_else(|| text.strip_suffix(':'))
        .filter(|bare| parse_scheme(bare).is_ok())
    {
        Some(bare) => Err(SchemeError::Punctuated {
            bare: bare.to_ascii_lowercase(),
        }),
        None => Err(SchemeError::Invalid),
    }
}

/// Why a `url_scheme` entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemeError {
    #[error("a scheme is written without `:` or `://`")]
    Punctuated { bare: String },
    #[error("a scheme is a letter followed by letters, digits, `+`, `-` or `.`")]
    Invalid,
}

impl SchemeError {
    /// What to write instead.
    pub fn hint(&self) -> String {
        match self {
            SchemeError::Punctuated { bare } => {
                format!("write the scheme alone, without `:` or `://`: {bare}")
            }
            SchemeError::Invalid => "write for example `url_scheme: https`".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(url: &str) -> Option<String> {
        UrlParts::parse(url).and_then(|p| p.host)
    }

    #[test]
    fn hosts_are_normalized() {
        let table: &[(&str, Option<&str>)] = &[
            ("https://api.github.com/repos", Some("api.github.com")),
            // Every IPv4 spelling of the metadata address.
            ("http://169.254.169.254/latest", Some("169.254.169.254")),
            ("http://2852039166/", Some("169.254.169.254")),
            ("http://0251.0376.0251.0376/", Some("169.254.169.254")),
            ("http://0xa9fea9fe/", Some("169.254.169.254")),
            ("http://0xA9.0xFE.0xA9.0xFE/", Some("169.254.169.254")),
            ("http://169.254.43518/", Some("169.254.169.254")),
            ("http://169.16689662/", Some("169.254.169.254")),
            ("http://169.254.169.254./", Some("169.254.169.254")),
            ("http://%31%36%39.254.169.254/", Some("169.254.169.254")),
            ("https://%61pi.github.com/", Some("api.github.com")),
            (
                "http://169\u{3002}254\u{3002}169\u{3002}254/",
                Some("169.254.169.254"),
            ),
            // IPv6, including the IPv4-mapped forms.
            ("http://[::ffff:a9fe:a9fe]/", Some("169.254.169.254")),
            ("http://[::ffff:169.254.169.254]/", Some("169.254.169.254")),
            (
                "http://[0:0:0:0:0:ffff:a9fe:a9fe]/",
                Some("169.254.169.254"),
            ),
            ("http://[FD00:EC2:0:0:0:0:0:254]/", Some("[fd00:ec2::254]")),
            ("http://[::1]:8080/", Some("[::1]")),
            // Case, trailing dot, IDNA.
            ("https://API.GitHub.COM/", Some("api.github.com")),
            ("https://api.github.com./", Some("api.github.com")),
            ("http://bücher.example/", Some("xn--bcher-kva.example")),
            ("http://BÜCHER.example./", Some("xn--bcher-kva.example")),
            (
                "http://xn--bcher-kva.example/",
                Some("xn--bcher-kva.example"),
            ),
            // Userinfo is not the host.
            ("http://api.github.com@evil.com/", Some("evil.com")),
            ("https://user:pw@api.github.com/", Some("api.github.com")),
            ("https://api.github.com:443@evil.com/", Some("evil.com")),
            // Backslashes are slashes in http(s) URLs.
            ("http://evil.com\\@api.github.com/", Some("evil.com")),
            ("http:\\\\evil.com\\path", Some("evil.com")),
            ("https:evil.com/x", Some("evil.com")),
            ("http:///evil.com/", Some("evil.com")),
            // Surrounding whitespace, and tabs or newlines inside, are ignored.
            ("  https://evil.com/ ", Some("evil.com")),
            ("https://ev\til.com/", Some("evil.com")),
            // A prefix is not the host.
            (
                "http://api.github.com.evil.com/",
                Some("api.github.com.evil.com"),
            ),
            // Non-special schemes: the opaque host is normalized the same way.
            ("foo://EVIL.com./x", Some("evil.com")),
            ("gopher://2852039166/", Some("169.254.169.254")),
            // No host, or no URL at all.
            ("file:///etc/passwd", None),
            ("mailto:someone@example.com", None),
            ("not a url", None),
            ("/relative/path", None),
            ("http://", None),
            ("http://1.2.3.4.5/", None),
            ("http://exa mple.com/", None),
        ];
        for (url, expected) in table {
            assert_eq!(host(url).as_deref(), *expected, "{url}");
        }
    }

    #[test]
    fn ports_are_effective_and_schemes_lower_case() {
        let parts = |u: &str| UrlParts::parse(u).map(|p| (p.scheme, p.port));
        assert_eq!(
            parts("https://a.example/"),
            Some(("https".into(), Some(443)))
        );
        assert_eq!(parts("HTTP://a.example/"), Some(("http".into(), Some(80))));
        assert_eq!(
            parts("https://a.example:443/"),
            Some(("https".into(), Some(443)))
        );
        assert_eq!(
            parts("https://a.example:8443/"),
            Some(("https".into(), Some(8443)))
        );
        assert_eq!(
            parts("http://a.example:0443/"),
            Some(("http".into(), Some(443)))
        );
        assert_eq!(parts("foo://a.example/"), Some(("foo".into(), None)));
        assert_eq!(parts("https://a.example:65536/"), None);
    }

    #[test]
    fn host_patterns_are_normalized_like_hosts() {
        let exact = |s: &str| HostPattern::Exact(s.to_owned());
        let table: &[(&str, HostPattern)] = &[
            ("api.github.com", exact("api.github.com")),
            ("API.GitHub.com.", exact("api.github.com")),
            ("bücher.example", exact("xn--bcher-kva.example")),
            ("2852039166", exact("169.254.169.254")),
            ("::ffff:a9fe:a9fe", exact("169.254.169.254")),
            ("[fd00:ec2::254]", exact("[fd00:ec2::254]")),
            ("fd00:ec2::254", exact("[fd00:ec2::254]")),
            (
                "*.GitHubUserContent.com",
                HostPattern::Subdomains("githubusercontent.com".to_owned()),
            ),
        ];
        for (text, expected) in table {
            assert_eq!(HostPattern::parse(text).as_ref(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_host_patterns_are_refused() {
        let table: &[(&str, HostPatternError)] = &[
            ("", HostPatternError::Empty),
            ("https://api.github.com", HostPatternError::Url),
            ("api.*.com", HostPatternError::Wildcard),
            ("*", HostPatternError::Wildcard),
            ("**.example.com", HostPatternError::Wildcard),
            ("api.github.com/repos", HostPatternError::NotAHost),
            ("user@api.github.com", HostPatternError::NotAHost),
            ("api.github.com:443", HostPatternError::Port),
            ("*.10.0.0.1", HostPatternError::WildcardAddress),
            ("*.[::1]", HostPatternError::WildcardAddress),
        ];
        for (text, expected) in table {
            assert_eq!(HostPattern::parse(text).as_ref(), Err(expected), "{text:?}");
        }
        assert!(matches!(
            HostPattern::parse("exa mple.com"),
            Err(HostPatternError::Invalid(_))
        ));
        assert!(matches!(
            HostPattern::parse("[::1"),
            Err(HostPatternError::Invalid(_))
        ));
    }

    #[test]
    fn a_wildcard_covers_subdomains_only() {
        let Ok(pattern) = HostPattern::parse("*.example.com") else {
            panic!("the pattern parses");
        };
        assert!(pattern.matches("a.example.com"));
        assert!(pattern.matches("a.b.example.com"));
        assert!(!pattern.matches("example.com"));
        assert!(!pattern.matches("notexample.com"));
        assert!(!pattern.matches("a.example.com.evil.net"));
        assert!(!pattern.matches(".example.com"));
        let Ok(numeric) = HostPattern::parse("*.com") else {
            panic!("the pattern parses");
        };
        assert!(numeric.matches("example.com"));
        assert!(!numeric.matches("com"));
    }

    #[test]
    fn schemes_are_checked() {
        assert_eq!(parse_scheme("HTTPS"), Ok("https".to_owned()));
        assert_eq!(parse_scheme("git+ssh"), Ok("git+ssh".to_owned()));
        let punctuated = Err(SchemeError::Punctuated {
            bare: "https".to_owned(),
        });
        assert_eq!(parse_scheme("https://"), punctuated);
        assert_eq!(parse_scheme("HTTPS:"), punctuated);
        assert_eq!(parse_scheme(""), Err(SchemeError::Invalid));
        assert_eq!(parse_scheme("1http"), Err(SchemeError::Invalid));
        assert_eq!(parse_scheme("://"), Err(SchemeError::Invalid));
    }
}
