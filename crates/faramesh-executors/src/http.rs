//! The `http` executor: exactly the request that was decided. The method is the decided
//! operation, the connection goes only to an address the executor may reach (see
//! `network.rs`), no proxy stands in between, and a redirect is reported instead of followed.

use std::error::Error as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Url};
use serde_json::{json, Map, Value};

use crate::network::{refusal, AllowedNetworks, GuardedResolver};
use crate::{duration_ms, timeout_message, CappedBuf, ExecOutcome, Limits};

/// The operations the executor sends, each as the HTTP method of the same name.
const OPERATIONS: &str = "get, post, put, patch, delete, head or options";

/// Headers some servers read as the "real" method of a request (Rails, Google APIs, ...). One
/// that names another method than the operation would run something the policy never decided.
const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The HTTP method named by an `http` action's operation (case-insensitive).
fn method_of(operation: &str) -> Option<Method> {
    Some(match operation.to_ascii_lowercase().as_str() {
        "get" => Method::GET,
        "post" => Method::POST,
        "put" => Method::PUT,
        "patch" => Method::PATCH,
        "delete" => Method::DELETE,
        "head" => Method::HEAD,
        "options" => Method::OPTIONS,
        _ => return None,
    })
}

fn not_a_method(operation: &str) -> String {
    format!(
        "operation {operation:?} is not an HTTP method; the http executor sends the decided \
         operation as the method, so submit the action with operation {OPERATIONS}"
    )
}

/// Checks, at submission, that an `http` action's params cannot make the executor send
/// anything other than what its operation says; `Err` names the offending field.
///
/// * `params.method` may be left out; if given it must equal the operation (ignoring case).
///   The executor never reads it, but a policy reviewer or a rule on params might.
/// * A method-override header (`X-HTTP-Method-Override` and kin) must equal the operation too.
/// * `params.body` is refused with `get` and `head`: a policy that allows `http get` grants a
///   read, and a GET body has no defined meaning (RFC 9110, 9.3.1) yet some servers act on it
///   (search and delete-by-query APIs), so it would carry a payload the policy never weighed.
///   An agent that needs to send content submits `post`, which the policy decides separately.
pub fn check_http_params(operation: &str, params: &Map<String, Value>) -> Result<(), String> {
    match params.get("method") {
        None | Some(Value::Null) => {}
        Some(Value::String(method)) if method.eq_ignore_ascii_case(operation) => {}
        Some(Value::String(method)) => {
            return Err(format!(
                "params.method is {method:?} but the operation is {operation:?}; the http \
                 executor sends the operation as the method, so leave params.method out or \
                 submit the action with operation {:?} for the policy to decide",
                method.trim().to_ascii_lowercase()
            ))
        }
        Some(_) => {
            return Err(format!(
                "params.method must be a string equal to the operation ({operation:?}), or be \
                 left out"
            ))
        }
    }
    check_override_headers(operation, params)?;
    if let Some(method) = method_of(operation) {
        check_body(&method, operation, params)?;
    }
    Ok(())
}

fn check_override_headers(operation: &str, params: &Map<String, Value>) -> Result<(), String> {
    if let Some(Value::Object(headers)) = params.get("headers") {
        for (name, value) in headers {
            let overrides = METHOD_OVERRIDE_HEADERS
                .iter()
                .any(|h| name.trim().eq_ignore_ascii_case(h));
            let agrees = value
                .as_str()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case(operation));
            if overrides && !agrees {
                return Err(format!(
                    "params.headers.{name} would ask the server to treat the request as \
                     another method than the operation {operation:?}; leave the header out or \
                     submit the action with the operation you mean"
                ));
            }
        }
    }
    Ok(())
}

fn check_body(method: &Method, operation: &str, params: &Map<String, Value>) -> Result<(), String> {
    let has_body = !matches!(params.get("body"), None | Some(Value::Null));
    if has_body && (*method == Method::GET || *method == Method::HEAD) {
        return Err(format!(
            "params.body is not allowed with operation {operation:?}: a {method} request is \
             decided as a read; submit the action with operation \"post\" (or put/patch) to \
             send a body"
        ));
    }
    Ok(())
}

pub(crate) async fn run(
    operation: &str,
    params: &Map<String, Value>,
    limits: &Limits,
    allowed: &AllowedNetworks,
) -> ExecOutcome {
    let spec = match HttpSpec::from_params(operation, params) {
        Ok(spec) => spec,
        Err(error) => return ExecOutcome::failed(error),
    };
    let shown_url = redacted(&spec.url);

    // An address written into the URL never reaches the resolver below, so it is checked
    // here, before any connection is attempted.
    if let Some(addr) = literal_address(&spec.url) {
        if let Err(kind) = allowed.check(addr) {
            let host = spec.url.host_str().unwrap_or_default();
            return ExecOutcome::failed(refusal(host, addr, kind));
        }
    }
    let (resolver, refused) = GuardedResolver::new(allowed.clone());

    let client = match reqwest::Client::builder()
        .timeout(limits.timeout)
        // Only the original URL was decided; a redirect could lead anywhere, including the
        // gatekeeper's own API.
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment (HTTP_PROXY, ALL_PROXY) would make the proxy connect
        // wherever it likes, out of reach of the address check.
        .no_proxy()
        .dns_resolver(Arc::new(resolver))
        .build()
    {
        Ok(client) => client,
        Err(e) => return ExecOutcome::failed(format!("cannot build HTTP client: {}", chain(e))),
    };

    let started = Instant::now();
    let mut request = client
        .request(spec.method, spec.url.clone())
        .headers(spec.headers);
    if let Some(body) = spec.body {
        request = request.body(body);
    }

    let mut response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            let output = json!({ "duration_ms": duration_ms(started.elapsed()) });
            let refused_because = refused.lock().unwrap_or_else(|p| p.into_inner()).take();
            return if let Some(error) = refused_because {
                ExecOutcome::Failed { error, output }
            } else if e.is_timeout() {
                ExecOutcome::TimedOut {
                    error: timeout_message(limits.timeout),
                    output,
                }
            } else {
                ExecOutcome::Failed {
                    error: format!("request to {shown_url} failed: {}", chain(e)),
                    output,
                }
            };
        }
    };

    let status = response.status();
    let location = response.headers().get(LOCATION).map(|location| {
        let location = String::from_utf8_lossy(location.as_bytes());
        // Shown resolved (a relative Location means little without its base) and redacted.
        spec.url
            .join(&location)
            .map_or_else(|_| location.into_owned(), |target| redacted(&target))
    });
    let headers = header_object(response.headers());
    let mut body = CappedBuf::new(limits.max_output_bytes);
    // Unlike a child's pipe, nothing is blocked by leaving a response
    // unread, so stop at the cap instead of downloading the rest.
    let body_error = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.is_full() && !chunk.is_empty() {
                    body.truncated = true;
                    break None;
                }
                body.push(&chunk);
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };

    let output = json!({
        "status": status.as_u16(),
        "headers": headers,
        "body": body.to_text(),
        "body_truncated": body.truncated,
        "duration_ms": duration_ms(started.elapsed()),
    });

    match body_error {
        Some(e) if e.is_timeout() => ExecOutcome::TimedOut {
            error: timeout_message(limits.timeout),
            output,
        },
        Some(e) => ExecOutcome::Failed {
            error: format!("reading the response from {shown_url} failed: {}", chain(e)),
            output,
        },
        None if status.is_success() => ExecOutcome::Succeeded { output },
        None => match location.filter(|_| status.is_redirection()) {
            Some(target) => ExecOutcome::Failed {
                error: format!(
                    "HTTP status {}: the redirect to {target} was not followed because only \
                     the original URL was decided; submit a new action for {target} if it \
                     should be requested",
                    status.as_u16()
                ),
                output,
            },
            None => ExecOutcome::Failed {
                error: format!("HTTP status {}", status.as_u16()),
                output,
            },
        },
    }
}

/// The IP address written in the URL, if its host is one rather than a name.
fn literal_address(url: &Url) -> Option<IpAddr> {
    // The URL parser has already turned every IPv4 spelling (`0x7f.1`, `2130706433`) into
    // dotted form; whatever reads as an address here is what the client connects to directly.
    let host = url.host_str()?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

struct HttpSpec {
    url: Url,
    method: Method,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

impl HttpSpec {
    fn from_params(operation: &str, params: &Map<String, Value>) -> Result<HttpSpec, String> {
        let raw_url = match params.get("url") {
            Some(Value::String(url)) if !url.trim().is_empty() => url.trim(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err("params.url is required".to_string())
            }
            Some(_) => return Err("params.url must be a string".to_string()),
        };
        let url = Url::parse(raw_url)
            .map_err(|e| format!("params.url {raw_url:?} is not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "params.url {:?} has scheme {:?}; only http and https are allowed",
                redacted(&url),
                url.scheme()
            ));
        }

        // The method is the decided operation and nothing else: params.method (checked
        // against the operation at submission) is not read, so an action stored before that
        // check still sends only what its operation says.
        let method = method_of(operation).ok_or_else(|| not_a_method(operation))?;
        check_body(&method, operation, params)?;
        check_override_headers(operation, params)?;

        let mut headers = HeaderMap::new();
        match params.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(given)) => {
                for (name, value) in given {
                    let Some(value) = value.as_str() else {
                        return Err(format!("params.headers.{name} must be a string"));
                    };
                    let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        format!("params.headers: {name:?} is not a valid header name")
                    })?;
                    let header_value = HeaderValue::from_str(value).map_err(|_| {
                        format!("params.headers.{name} is not a valid header value")
                    })?;
                    headers.append(header_name, header_value);
                }
            }
            Some(_) => return Err("params.headers must be an object of string values".to_string()),
        }

        let body = match params.get("body") {
            // An explicit null is read as "no body": sending the text `null`
            // is almost never what an action meant.
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone().into_bytes()),
            Some(value) => {
                let bytes = serde_json::to_vec(value)
                    .map_err(|e| format!("params.body cannot be encoded as JSON: {e}"))?;
                if !headers.contains_key(CONTENT_TYPE) {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                Some(bytes)
            }
        };

        Ok(HttpSpec {
            url,
            method,
            headers,
            body,
        })
    }
}

/// Response headers as a JSON object; repeated headers are joined with ", "
/// as HTTP allows for list-valued fields.
fn header_object(headers: &HeaderMap) -> Value {
    let mut object = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match object.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                object.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    Value::Object(object)
}

/// The URL with any password masked, since error texts end up in logs and
/// the action record.
fn redacted(url: &Url) -> String {
    if url.password().is_some() {
        let mut masked = url.clone();
        if masked.set_password(Some("***")).is_ok() {
            return masked.to_string();
        }
    }
    url.to_string()
}

/// An error with its causes; reqwest's own text ("error sending request")
/// hides the useful part (e.g. "Connection refused") in the source chain.
/// The URL is dropped from it because callers name the (redacted) URL.
fn chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
