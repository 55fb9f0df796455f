//! The routes file (`faramesh serve --notify FILE`, default `notify.yaml`): where pending
//! approvals are announced.
//!
//! ```yaml
//! public_url: https://faramesh.example.com     # links to the action in the web UI
//! escalation: [security]                       # told when an approval escalates
//! routes:
//!   payments-oncall:
//!     match: {tool: stripe}                    # the policy's match conditions, and `risk`
//!     slack:
//!       webhook_url: "${SLACK_WEBHOOK}"
//!       signing_secret: "${SLACK_SIGNING_SECRET}"
//!       users: {U0123ABCD: alice}              # Slack user id → the token it approves as
//!   audit-bus:
//!     webhook: {url: https://hooks.example.com/faramesh, secret: "${HOOK_SECRET}"}
//!   security:
//!     match: {risk: high}
//!     email: {to: [sec@example.com], from: faramesh@example.com, smtp: "smtp://mail.example.com:587",
//!             username: "${SMTP_USER}", password: "${SMTP_PASSWORD}"}
//! ```
//!
//! `${VAR}` is read from the environment when the file is loaded. Secrets are kept as
//! [`Secret`] and never printed.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use faramesh_core::policy::ActionMatch;
use faramesh_core::settings_file::{at, check_keys, expand, FileError, Problem, Secret};
use faramesh_core::yaml::{Kind, Node};
use faramesh_core::{ActionRequest, RiskLevel};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Every route of a routes file.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// The web UI's address as people reach it, for links; none: no links.
    pub public_url: Option<String>,
    pub routes: BTreeMap<String, Route>,
    /// The routes told when an approval escalates.
    pub escalation: Vec<String>,
}

/// One route: which actions it announces, and where.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// None: every action.
    pub filter: Option<ActionMatch>,
    /// The risk levels it announces; empty: any.
    pub risk: Vec<RiskLevel>,
    pub target: Target,
}

/// Where a route delivers.
#[derive(Debug, Clone)]
pub enum Target {
    Webhook(Webhook),
    Slack(Slack),
    Email(Email),
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Webhook(_) => "webhook",
            Target::Slack(_) => "slack",
            Target::Email(_) => "email",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: Secret,
    /// Signs every delivery (`X-Faramesh-Signature`).
    pub secret: Secret,
}

#[derive(Debug, Clone)]
pub struct Slack {
    /// A Slack incoming webhook: anyone holding it may post to the channel.
    pub webhook_url: Secret,
    /// Verifies the button callbacks Slack sends.
    pub signing_secret: Secret,
    /// Slack user id → the name of the API token that user approves as.
    pub users: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Email {
    pub to: Vec<String>,
    pub from: String,
    pub server: SmtpServer,
    pub username: Option<Secret>,
    pub password: Option<Secret>,
    /// A PEM file of extra trusted roots, for a mail server with a private certificate.
    pub ca_file: Option<PathBuf>,
}

/// An SMTP server and how its connection is encrypted. Mail is never sent in clear text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    /// `smtps://`: TLS from the first byte; `smtp://`: STARTTLS, required.
    pub implicit_tls: bool,
}

/// What a route decides on: the action as submitted, and its risk.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub request: &'a ActionRequest,
    pub risk: Option<RiskLevel>,
}

impl Route {
    /// Whether the route announces this action.
    pub fn matches(&self, subject: Subject<'_>) -> bool {
        let risk_holds =
            self.risk.is_empty() || subject.risk.is_some_and(|r| self.risk.contains(&r));
        risk_holds
            && self
                .filter
                .as_ref()
                .is_none_or(|m| m.matches(subject.request))
    }
}

impl Routes {
    /// The routes that announce an action: the ones its rule names, else every route whose
    /// match holds.
    pub fn for_action(&self, subject: Subject<'_>, named: &[String]) -> Vec<&Route> {
        if named.is_empty() {
            self.routes
                .values()
                .filter(|r| r.matches(subject))
                .collect()
        } else {
            named.iter().filter_map(|n| self.routes.get(n)).collect()
        }
    }

    /// The routes told when an approval escalates.
    pub fn escalation_routes(&self) -> Vec<&Route> {
        self.escalation
            .iter()
            .filter_map(|n| self.routes.get(n))
            .collect()
    }

    /// The Slack routes, for verifying a button callback against each signing secret.
    pub fn slack_routes(&self) -> impl Iterator<Item = (&Route, &Slack)> {
        self.routes.values().filter_map(|r| match &r.target {
            Target::Slack(s) => Some((r, s)),
            _ => None,
        })
    }

    /// Names in `names` that are not routes of this file.
    pub fn unknown<'a>(&self, names: &'a [String]) -> Vec<&'a str> {
        names
            .iter()
            .filter(|n| !self.routes.contains_key(n.as_str()))
            .map(String::as_str)
            .collect()
    }
}

const TOP_KEYS: &[&str] = &["public_url", "escalation", "routes"];
const ROUTE_KEYS: &[&str] = &["match", "webhook", "slack", "email"];
const TARGETS: &[&str] = &["webhook", "slack", "email"];
const WEBHOOK_KEYS: &[&str] = &["url", "secret"];
const SLACK_KEYS: &[&str] = &["webhook_url", "signing_secret", "users"];
const EMAIL_KEYS: &[&str] = &["to", "from", "smtp", "username", "password", "ca_file"];

/// Parses and checks a routes file, reading `${VAR}` from `env`. Relative `ca_file` paths are
/// taken from `base`, the file's directory.
pub fn parse(
    file: &str,
    text: &str,
    base: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Routes, FileError> {
    let fail = |problems: Vec<Problem>| FileError {
        file: file.to_owned(),
        problems,
    };
    let doc = faramesh_core::settings_file::load(file, text)?;
    let mut problems = Vec::new();
    if doc.as_map().is_none() {
        return Err(fail(vec![at(
            doc.head_span(),
            format!(
                "the file must be a mapping with `routes:`, found {}",
                doc.describe()
            ),
        )]));
    }
    check_keys(&doc, TOP_KEYS, "the file", &mut problems);
    let mut routes = Routes::default();
    if let Some(node) = doc.get("public_url") {
        routes.public_url = web_url(node, "`public_url`", env, &mut problems)
            .map(|u| u.expose().trim_end_matches('/').to_owned());
    }
    match doc.get("routes").map(|n| (n, n.as_map())) {
        None => problems.push(at(
            doc.head_span(),
            "the file has no `routes:` mapping; name each route under it".to_owned(),
        )),
        Some((node, None)) => problems.push(at(
            node.span,
            format!(
                "`routes` must be a mapping of names to routes, found {}",
                node.describe()
            ),
        )),
        Some((_, Some(entries))) => {
            for (key, node) in entries {
                let Some(name) = key.as_str().filter(|n| good_name(n)) else {
                    problems.push(at(
                        key.span,
                        format!(
                            "a route's name must be letters, digits, `-` or `_`, found {}",
                            key.describe()
                        ),
                    ));
                    continue;
                };
                if let Some(route) = parse_route(name, node, base, env, &mut problems) {
                    routes.routes.insert(name.to_owned(), route);
                }
            }
        }
    }
    if let Some(node) = doc.get("escalation") {
        for (name, span) in names(node, "`escalation`", &mut problems) {
            if routes.routes.contains_key(&name) {
                routes.escalation.push(name);
            } else {
                problems.push(at(
                    span,
                    format!("`escalation` names {name:?}, which is not a route of this file"),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(routes)
    } else {
        problems.sort_by_key(|p| (p.line, p.column));
        Err(fail(problems))
    }
}

fn good_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn parse_route(
    name: &str,
    node: &Node,
    base: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Route> {
    let place = format!("route {name:?}");
    if node.as_map().is_none() {
        problems.push(at(
            node.span,
            format!(
                "{place} must be a mapping with one of webhook, slack or email, found {}",
                node.describe()
            ),
        ));
        return None;
    }
    check_keys(node, ROUTE_KEYS, &place, problems);
    let before = problems.len();
    let (filter, risk) = match node.get("match") {
        None => (None, Vec::new()),
        Some(m) => parse_match(m, &place, problems),
    };
    let targets: Vec<&str> = TARGETS
        .iter()
        .copied()
        .filter(|t| node.get(t).is_some())
        .collect();
    let target = match targets.as_slice() {
        [one] => {
            let value = node.get(one)?;
            match *one {
                "webhook" => parse_webhook(value, &place, env, problems).map(Target::Webhook),
                "slack" => parse_slack(value, &place, env, problems).map(Target::Slack),
                _ => parse_email(value, &place, base, env, problems).map(Target::Email),
            }
        }
        [] => {
            problems.push(at(
                node.head_span(),
                format!("{place} says nowhere to deliver; give it one of webhook, slack or email"),
            ));
            None
        }
        several => {
            problems.push(at(
                node.head_span(),
                format!(
                    "{place} has {} targets; give each its own route",
                    several.join(" and ")
                ),
            ));
            None
        }
    };
    let target = target?;
    (problems.len() == before).then(|| Route {
        name: name.to_owned(),
        filter,
        risk,
        target,
    })
}

/// The policy's match conditions, with `risk` (one level or a list) beside them.
fn parse_match(
    node: &Node,
    place: &str,
    problems: &mut Vec<Problem>,
) -> (Option<ActionMatch>, Vec<RiskLevel>) {
    let Some(entries) = node.as_map() else {
        problems.push(at(
            node.span,
            format!(
                "`match` of {place} must be a mapping of conditions, found {}",
                node.describe()
            ),
        ));
        return (None, Vec::new());
    };
    let mut risk = Vec::new();
    if let Some(value) = node.get("risk") {
        let items: Vec<&Node> = match value.as_seq() {
            Some(items) => items.iter().collect(),
            None => vec![value],
        };
        for item in items {
            match item.as_str().and_then(RiskLevel::parse) {
                Some(level) => risk.push(level),
                None => problems.push(at(
                    item.span,
                    format!(
                        "`risk` must be low, medium or high (or a list of them), found {}",
                        item.describe()
                    ),
                )),
            }
        }
    }
    let rest: Vec<(Node, Node)> = entries
        .iter()
        .filter(|(k, _)| k.as_str() != Some("risk"))
        .cloned()
        .collect();
    if rest.is_empty() {
        return (None, risk);
    }
    let conditions = Node {
        span: node.span,
        kind: Kind::Map(rest),
    };
    match ActionMatch::parse(&conditions, "match") {
        Ok(m) => (Some(m), risk),
        Err(diags) => {
            for d in diags {
                problems.push(Problem {
                    line: d.line,
                    column: d.column,
                    message: format!("in `match` of {place}: {}", d.message),
                });
            }
            (None, risk)
        }
    }
}

fn parse_webhook(
    node: &Node,
    place: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Webhook> {
    let place = format!("`webhook` of {place}");
    mapping(node, &place, WEBHOOK_KEYS, problems)?;
    let url =
        required(node, "url", &place, problems).and_then(|n| web_url(n, "`url`", env, problems));
    let secret = required(node, "secret", &place, problems)
        .and_then(|n| secret(n, "`secret`", env, problems));
    Some(Webhook {
        url: url?,
        secret: secret?,
    })
}

fn parse_slack(
    node: &Node,
    place: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Slack> {
    let place = format!("`slack` of {place}");
    mapping(node, &place, SLACK_KEYS, problems)?;
    let webhook_url = required(node, "webhook_url", &place, problems)
        .and_then(|n| web_url(n, "`webhook_url`", env, problems));
    let signing_secret = required(node, "signing_secret", &place, problems)
        .and_then(|n| secret(n, "`signing_secret`", env, problems));
    let mut users = BTreeMap::new();
    if let Some(value) = node.get("users") {
        match value.as_map() {
            None => problems.push(at(value.span, format!("`users` must map Slack user ids to token names, e.g. {{U0123ABCD: alice}}, found {}", value.describe()))),
            Some(entries) => {
                for (user, token) in entries {
                    match (user.as_str(), token.as_str().filter(|t| !t.trim().is_empty())) {
                        (Some(user), Some(token)) => {
                            users.insert(user.to_owned(), token.to_owned());
                        }
                        _ => problems.push(at(user.span, "each entry of `users` is a Slack user id and the name of the API token that user approves as".to_owned())),
                    }
                }
            }
        }
    }
    Some(Slack {
        webhook_url: webhook_url?,
        signing_secret: signing_secret?,
        users,
    })
}

fn parse_email(
    node: &Node,
    place: &str,
    base: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Email> {
    let place = format!("`email` of {place}");
    mapping(node, &place, EMAIL_KEYS, problems)?;
    let before = problems.len();
    let mut to = Vec::new();
    if let Some(value) = required(node, "to", &place, problems) {
        let items: Vec<&Node> = match value.as_seq() {
            Some(items) => items.iter().collect(),
            None => vec![value],
        };
        for item in items {
            match text(item, "`to`", env, problems) {
                Some(address) if address.parse::<lettre::Address>().is_ok() => to.push(address),
                Some(address) => problems.push(at(
                    item.span,
                    format!("{address:?} is not an email address"),
                )),
                None => {}
            }
        }
        if to.is_empty() && problems.len() == before {
            problems.push(at(value.span, "`to` lists nobody".to_owned()));
        }
    }
    let from = required(node, "from", &place, problems).and_then(|n| {
        let address = text(n, "`from`", env, problems)?;
        if address.parse::<lettre::message::Mailbox>().is_ok() {
            Some(address)
        } else {
            problems.push(at(n.span, format!("{address:?} is not an email address")));
            None
        }
    });
    let server = required(node, "smtp", &place, problems).and_then(|n| {
        let url = text(n, "`smtp`", env, problems)?;
        smtp_server(&url)
            .map_err(|why| problems.push(at(n.span, why)))
            .ok()
    });
    let username = node
        .get("username")
        .and_then(|n| secret(n, "`username`", env, problems));
    let password = node
        .get("password")
        .and_then(|n| secret(n, "`password`", env, problems));
    if username.is_some() != password.is_some() && problems.len() == before {
        problems.push(at(
            node.head_span(),
            format!("{place} has a username or a password but not both"),
        ));
    }
    let ca_file = node.get("ca_file").and_then(|n| {
        let path = base.join(text(n, "`ca_file`", env, problems)?);
        match std::fs::read_to_string(&path) {
            Ok(pem) if pem.contains("BEGIN CERTIFICATE") => Some(path),
            Ok(_) => {
                problems.push(at(
                    n.span,
                    format!("{} holds no PEM certificate", path.display()),
                ));
                None
            }
            Err(e) => {
                problems.push(at(n.span, format!("cannot read {}: {e}", path.display())));
                None
            }
        }
    });
    (problems.len() == before).then_some(Email {
        to,
        from: from?,
        server: server?,
        username,
        password,
        ca_file,
    })
}

/// `smtp://host[:port]` (STARTTLS, port 587 by default) or `smtps://host[:port]` (TLS, 465).
fn smtp_server(text: &str) -> Result<SmtpServer, String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("`smtp` must be a URL such as smtp://mail.example.com:587 ({e})"))?;
    let implicit_tls = match url.scheme() {
        "smtp" => false,
        "smtps" => true,
        other => {
            return Err(format!(
                "`smtp` must start with smtp:// (STARTTLS) or smtps:// (TLS), found {other}://"
            ))
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put SMTP credentials in `username` and `password` (from the environment), not in the URL".to_owned());
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`smtp` {text:?} names no host"))?;
    Ok(SmtpServer {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: url.port().unwrap_or(if implicit_tls { 465 } else { 587 }),
        implicit_tls,
    })
}

fn mapping(node: &Node, place: &str, keys: &[&str], problems: &mut Vec<Problem>) -> Option<()> {
    if node.as_map().is_none() {
        problems.push(at(
            node.span,
            format!(
                "{place} must be a mapping with {}, found {}",
                keys.join(", "),
                node.describe()
            ),
        ));
        return None;
    }
    check_keys(node, keys, place, problems);
    Some(())
}

fn required<'a>(
    node: &'a Node,
    key: &str,
    place: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a Node> {
    let found = node.get(key);
    if found.is_none() {
        problems.push(at(node.head_span(), format!("{place} needs `{key}`")));
    }
    found
}

/// Text with `${VAR}` expanded; not empty.
fn text(
    node: &Node,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let Some(raw) = node.as_str() else {
        problems.push(at(
            node.span,
            format!("{what} must be text, found {}", node.describe()),
        ));
        return None;
    };
    let value = expand(raw, node.span, env, problems)?;
    if value.trim().is_empty() {
        problems.push(at(node.span, format!("{what} is empty")));
        return None;
    }
    Some(value)
}

fn secret(
    node: &Node,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Secret> {
    text(node, what, env, problems).map(Secret)
}

/// An http:// or https:// URL; kept as a secret, since such URLs often carry a token.
fn web_url(
    node: &Node,
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Secret> {
    let value = text(node, what, env, problems)?;
    match url::Url::parse(&value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Some(Secret(value))
        }
        // The value may hold a secret read from the environment: say what is wrong, not what it is.
        _ => {
            problems.push(at(
                node.span,
                format!("{what} must be an http:// or https:// URL"),
            ));
            None
        }
    }
}

/// Route names: one name or a list of them, each with where it is.
fn names(
    node: &Node,
    what: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(String, faramesh_core::yaml::Span)> {
    let items: Vec<&Node> = match node.as_seq() {
        Some(items) => items.iter().collect(),
        None => vec![node],
    };
    let mut found = Vec::new();
    for item in items {
        match item.as_str() {
            Some(name) => found.push((name.to_owned(), item.span)),
            None => problems.push(at(
                item.span,
                format!("{what} lists route names, found {}", item.describe()),
            )),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "a test stops at the first failure"
    )]

    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOOK_SECRET" => Some("whsec-123".into()),
            "SLACK_WEBHOOK" => Some("https://hooks.slack.com/services/T/B/X".into()),
            "SLACK_SIGNING_SECRET" => Some("8f742231b10e8888abcd99yyyzzz85a5".into()),
            _ => None,
        }
    }

    fn load(text: &str) -> Result<Routes, FileError> {
        parse("notify.yaml", text, std::path::Path::new("."), &env)
    }

    fn request(tool: &str, amount: u64) -> ActionRequest {
        serde_json::from_value(json!({"agent_id": "a", "tool": tool, "operation": "refund", "params": {"amount": amount}})).unwrap()
    }

    const FILE: &str = r#"
public_url: https://faramesh.example.com/
escalation: [security]
routes:
  payments-oncall:
    match: {tool: stripe, amount_gt: 100}
    slack:
      webhook_url: "${SLACK_WEBHOOK}"
      signing_secret: "${SLACK_SIGNING_SECRET}"
      users: {U0123ABCD: alice}
  audit-bus:
    webhook: {url: "https://hooks.example.com/faramesh", secret: "${HOOK_SECRET}"}
  security:
    match: {risk: high}
    email: {to: [sec@example.com], from: faramesh@example.com, smtp: "smtp://mail.example.com"}
"#;

    #[test]
    fn a_routes_file_reads_with_its_secrets_from_the_environment() {
        let routes = load(FILE).unwrap();
        assert_eq!(
            routes.public_url.as_deref(),
            Some("https://faramesh.example.com")
        );
        assert_eq!(routes.escalation, ["security"]);
        let Target::Slack(slack) = &routes.routes["payments-oncall"].target else {
            panic!()
        };
        assert_eq!(
            slack.signing_secret.expose(),
            "8f742231b10e8888abcd99yyyzzz85a5"
        );
        assert_eq!(slack.users["U0123ABCD"], "alice");
        let Target::Email(email) = &routes.routes["security"].target else {
            panic!()
        };
        assert_eq!(
            email.server,
            SmtpServer {
                host: "mail.example.com".into(),
                port: 587,
                implicit_tls: false
            }
        );
        // Secrets never show in debug output.
        assert!(!format!("{routes:?}").contains("whsec-123"));
    }

    #[test]
    fn routes_pick_actions_by_the_policys_conditions_and_risk() {
        let routes = load(FILE).unwrap();
        let names = |tool: &str, amount: u64, risk: RiskLevel| -> Vec<String> {
            let request = request(tool, amount);
            routes
                .for_action(
                    Subject {
                        request: &request,
                        risk: Some(risk),
                    },
                    &[],
                )
                .iter()
                .map(|r| r.name.clone())
                .collect()
        };
        assert_eq!(
            names("stripe", 500, RiskLevel::Low),
            ["audit-bus", "payments-oncall"]
        );
        assert_eq!(
            names("stripe", 50, RiskLevel::High),
            ["audit-bus", "security"]
        );
        assert_eq!(names("shell", 0, RiskLevel::Medium), ["audit-bus"]);
        // A rule that names its routes gets exactly those.
        let request = request("stripe", 500);
        let named = routes.for_action(
            Subject {
                request: &request,
                risk: None,
            },
            &["security".into()],
        );
        assert_eq!(named.len(), 1);
        assert_eq!(
            routes.unknown(&["security".into(), "nope".into()]),
            ["nope"]
        );
    }

    #[test]
    fn every_mistake_is_reported_where_it_is() {
        let text = r#"
public_url: ftp://x
escalation: [nobody]
routez: {}
routes:
  one:
    webhok: {url: "https://x.example"}
  two:
    webhook: {url: "https://x.example", secret: "${UNSET_VAR}"}
  three:
    email: {to: [not-an-address], from: a@b.example, smtp: "http://mail.example.com"}
  four:
    slack: {webhook_url: "https://hooks.slack.com/x", signing_secret: s}
    webhook: {url: "https://x.example", secret: s}
  five:
    match: {risk: extreme, tol: x}
    webhook: {url: "https://x.example", secret: s}
"#;
        let err = load(text).unwrap_err().to_string();
        for expected in [
            "`public_url` must be an http:// or https:// URL",
            "unknown key `routez` in the file (did you mean `routes`?)",
            "unknown key `webhok` in route \"one\" (did you mean `webhook`?)",
            "route \"one\" says nowhere to deliver",
            "the environment has no variable `UNSET_VAR`",
            "\"not-an-address\" is not an email address",
            "`smtp` must start with smtp:// (STARTTLS) or smtps:// (TLS)",
            "route \"four\" has webhook and slack targets",
            "`risk` must be low, medium or high",
            "in `match` of route \"five\"",
            "`escalation` names \"nobody\"",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
        assert!(err.starts_with("notify.yaml:2:"), "{err}");
    }
}
