//! The MCP servers file of `faramesh serve` (`--mcp-config`, default `mcp.yaml`): which MCP
//! servers the HTTP gateway serves at `/mcp/{name}`, each run as a child over stdio or reached
//! over Streamable HTTP.
//!
//! ```yaml
//! servers:
//!   github:
//!     url: https://example.com/mcp
//!     headers: {Authorization: "Bearer ${GITHUB_TOKEN}"}
//!   files:
//!     command: npx
//!     args: ["-y", "@modelcontextprotocol/server-filesystem", "/srv/data"]
//!     env: {}
//! ```
//!
//! `${VAR}` in a URL, header, argument or environment value is read from the environment when
//! the file is loaded; a variable that is not set is an error. Values read so are never logged
//! or shown.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::upstream::stdio::Command;
use faramesh_core::yaml::{Kind, Node};
use std::collections::BTreeMap;

/// The servers of one file, by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServersFile {
    pub servers: BTreeMap<String, Upstream>,
}

/// Where an MCP server is.
#[derive(Debug, Clone, PartialEq)]
pub enum Upstream {
    /// A child process over stdio, one per session.
    Stdio(Command),
    /// A remote server over Streamable HTTP.
    Http {
        url: String,
        /// Sent with every request; the values may hold secrets.
        headers: Vec<(String, Secret)>,
    },
}

impl Upstream {
    /// `stdio` or `http`.
    pub fn transport(&self) -> &'static str {
        match self {
            Upstream::Stdio(_) => "stdio",
            Upstream::Http { .. } => "http",
        }
    }
}

use faramesh_core::settings_file::{at, expand, unknown_key};
pub use faramesh_core::settings_file::{FileError as ConfigError, Problem, Secret};

const TOP_KEYS: &[&str] = &["servers"];
const SERVER_KEYS: &[&str] = &["url", "headers", "command", "args", "env"];

/// Names the built-in executors run; an MCP server may not take one.
pub const RESERVED_NAMES: &[&str] = &["shell", "http"];

/// Parses and checks a servers file, reading `${VAR}` from `env`.
pub fn parse(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServersFile, ConfigError> {
    let mut problems = Vec::new();
    let fail = |problems: Vec<Problem>| ConfigError {
        file: file.to_owned(),
        problems,
    };
    let doc = faramesh_core::settings_file::load(file, text)?;
    let mut servers = BTreeMap::new();
    let Some(entries) = doc.as_map() else {
        return Err(fail(vec![at(
            doc.head_span(),
            format!(
                "the file must be a mapping with `servers:`, found {}",
                doc.describe()
            ),
        )]));
    };
    for (key, _) in entries {
        let name = key.as_str().unwrap_or_default();
        if !TOP_KEYS.contains(&name) {
            problems.push(unknown_key(key, name, TOP_KEYS, "the file"));
        }
    }
    match doc.get("servers") {
        None => problems.push(at(
            doc.head_span(),
            "the file has no `servers:` mapping; list the MCP servers under it".to_owned(),
        )),
        Some(node) => match node.as_map() {
            None => problems.push(at(
                node.span,
                format!(
                    "`servers` must be a mapping of names to servers, found {}",
                    node.describe()
                ),
            )),
            Some(list) => {
                for (key, server) in list {
                    let Some(name) = key.as_str() else {
                        problems.push(at(key.span, "a server's name must be text".to_owned()));
                        continue;
                    };
                    if let Some(problem) = bad_name(name) {
                        problems.push(at(key.span, problem));
                        continue;
                    }
                    if let Some(upstream) = parse_server(name, server, env, &mut problems) {
                        servers.insert(name.to_owned(), upstream);
                    }
                }
            }
        },
    }
    if problems.is_empty() {
        Ok(ServersFile { servers })
    } else {
        Err(fail(problems))
    }
}

fn bad_name(name: &str) -> Option<String> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !fine {
        return Some(format!(
            "server name {name:?} must be 1 to 64 letters, digits, `-`, `_` or `.`: it is the path /mcp/{{name}} and the tool of its actions"
        ));
    }
    RESERVED_NAMES.contains(&name).then(|| {
        format!("server name `{name}` is the tool of a built-in executor; choose another (for example `{name}-mcp`)")
    })
}

fn parse_server(
    name: &str,
    node: &Node,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Upstream> {
    let Some(entries) = node.as_map() else {
        problems.push(at(
            node.span,
            format!(
                "server `{name}` must be a mapping with `url` or `command`, found {}",
                node.describe()
            ),
        ));
        return None;
    };
    let place = format!("server `{name}`");
    for (key, _) in entries {
        let key_name = key.as_str().unwrap_or_default();
        if !SERVER_KEYS.contains(&key_name) {
            problems.push(unknown_key(key, key_name, SERVER_KEYS, &place));
        }
    }
    let before = problems.len();
    let mut text = |key: &str| -> Option<String> {
        let value = node.get(key)?;
        match value.as_str() {
            Some(t) => expand(t, value.span, env, problems),
            None => {
                problems.push(at(
                    value.span,
                    format!(
                        "`{key}` of {place} must be text, found {}",
                        value.describe()
                    ),
                ));
                None
            }
        }
    };
    let url = text("url");
    let command = text("command");
    let upstream = match (url, command, node.get("url"), node.get("command")) {
        (_, _, Some(_), Some(c)) => {
            problems.push(at(
                c.span,
                format!("{place} has both `url` and `command`; give one: `url` for a remote server, `command` for one run here"),
            ));
            None
        }
        (Some(url), None, Some(u), None) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(at(
                    u.span,
                    format!("`url` of {place} must start with http:// or https://"),
                ));
            }
            for key in ["args", "env"] {
                if let Some(k) = node.get(key) {
                    problems.push(at(k.span, format!("`{key}` is for a server run as a command; {place} is reached at its `url`")));
                }
            }
            let headers = pairs(node.get("headers"), "headers", &place, env, problems)
                .into_iter()
                .map(|(k, v)| (k, Secret(v)))
                .collect();
            Some(Upstream::Http { url, headers })
        }
        (None, Some(program), None, Some(c)) => {
            if program.trim().is_empty() {
                problems.push(at(c.span, format!("`command` of {place} is empty")));
            }
            if let Some(h) = node.get("headers") {
                problems.push(at(h.span, format!("`headers` are for a server reached at a `url`; {place} is run as a command")));
            }
            let args = match node.get("args") {
                None => Vec::new(),
                Some(list) => match list.as_seq() {
                    None => {
                        problems.push(at(
                            list.span,
                            format!(
                                "`args` of {place} must be a list of text, found {}",
                                list.describe()
                            ),
                        ));
                        Vec::new()
                    }
                    Some(items) => items
                        .iter()
                        .filter_map(|item| match &item.kind {
                            Kind::String(t) => expand(t, item.span, env, problems),
                            // Numbers and booleans are arguments as written.
                            Kind::Number(_) | Kind::Bool(_) => {
                                item.to_json().ok().map(|v| v.to_string())
                            }
                            _ => {
                                problems.push(at(
                                    item.span,
                                    format!(
                                        "an argument of {place} must be text, found {}",
                                        item.describe()
                                    ),
                                ));
                                None
                            }
                        })
                        .collect(),
                },
            };
            let env = pairs(node.get("env"), "env", &place, env, problems);
            Some(Upstream::Stdio(Command {
                program: program.into(),
                args: args.into_iter().map(Into::into).collect(),
                env: env.into_iter().collect(),
            }))
        }
        (None, None, None, None) => {
            problems.push(at(
                node.span,
                format!("{place} has neither `url` nor `command`; give `url` for a remote server or `command` (with `args`) for one run here"),
            ));
            None
        }
        // A value that was not text, already reported.
        _ => None,
    };
    if problems.len() > before {
        return None;
    }
    upstream
}

/// A mapping of text to text (`headers`, `env`), values expanded.
fn pairs(
    node: Option<&Node>,
    key: &str,
    place: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, String)> {
    let Some(node) = node else {
        return Vec::new();
    };
    let Some(entries) = node.as_map() else {
        problems.push(at(
            node.span,
            format!(
                "`{key}` of {place} must be a mapping of names to text, found {}",
                node.describe()
            ),
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in entries {
        let Some(name_text) = name.as_str() else {
            problems.push(at(
                name.span,
                format!("a name in `{key}` of {place} must be text"),
            ));
            continue;
        };
        let value_text = match &value.kind {
            Kind::String(t) => expand(t, value.span, env, problems),
            Kind::Number(_) | Kind::Bool(_) => value.to_json().ok().map(|v| v.to_string()),
            _ => {
                problems.push(at(
                    value.span,
                    format!(
                        "`{key}.{name_text}` of {place} must be text, found {}",
                        value.describe()
                    ),
                ));
                None
            }
        };
        if let Some(v) = value_text {
            out.push((name_text.to_owned(), v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test stops at the first failure")]

    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "GITHUB_TOKEN" => Some("ghp-secret".into()),
            "ROOT" => Some("/srv/data".into()),
            _ => None,
        }
    }

    #[test]
    fn both_kinds_of_server_are_read_with_variables_expanded() {
        let text = r#"servers:
  github:
    url: https://example.com/mcp
    headers: {Authorization: "Bearer ${GITHUB_TOKEN}"}
  files:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-filesystem", "${ROOT}", 3]
    env: {NODE_ENV: production, PRICE: "$$5"}
"#;
        let file = parse("mcp.yaml", text, &env).unwrap();
        assert_eq!(
            file.servers["github"],
            Upstream::Http {
                url: "https://example.com/mcp".into(),
                headers: vec![("Authorization".into(), Secret("Bearer ghp-secret".into()))],
            }
        );
        let Upstream::Stdio(command) = &file.servers["files"] else {
            panic!("files runs as a command");
        };
        assert_eq!(
            command.text(),
            "npx -y @modelcontextprotocol/server-filesystem /srv/data 3"
        );
        assert_eq!(command.env["PRICE"], "$5");
        assert!(!format!("{:?}", file.servers["github"]).contains("ghp-secret"));
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let text = r#"servers:
  shell:
    command: sh
  "bad name":
    command: x
  both:
    url: https://a
    command: b
  neither: {}
  remote:
    url: ftp://x
    headers: {A: "${MISSING}"}
  local:
    command: npx
    argz: []
"#;
        let error = parse("mcp.yaml", text, &env).unwrap_err();
        let rendered = error.to_string();
        for expected in [
            "mcp.yaml:2:3: error: server name `shell` is the tool of a built-in executor",
            "mcp.yaml:4:3: error: server name \"bad name\" must be",
            "mcp.yaml:8:14: error: server `both` has both `url` and `command`",
            "mcp.yaml:9:12: error: server `neither` has neither `url` nor `command`",
            "mcp.yaml:11:10: error: `url` of server `remote` must start with http:// or https://",
            "error: the environment has no variable `MISSING`",
            "mcp.yaml:15:5: error: unknown key `argz` in server `local` (did you mean `args`?)",
        ] {
            assert!(
                rendered.contains(expected),
                "missing {expected:?} in:\n{rendered}"
            );
        }
        assert!(!rendered.contains("ghp-secret"));
    }

    #[test]
    fn a_file_without_servers_is_refused() {
        let error = parse("mcp.yaml", "server: {}\n", &env).unwrap_err();
        let rendered = error.to_string();
        assert!(
            rendered.contains("unknown key `server` in the file (did you mean `servers`?)"),
            "{rendered}"
        );
        assert!(rendered.contains("has no `servers:` mapping"), "{rendered}");
    }
}
