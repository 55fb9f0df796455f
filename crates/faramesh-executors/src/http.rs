//! The `http` executor: one request, no more than 5 redirects.

use std::error::Error as _;
use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde_json::{json, Map, Value};

use crate::{duration_ms, timeout_message, CappedBuf, ExecOutcome, Limits};

pub(crate) async fn run(params: &Map<String, Value>, limits: &Limits) -> ExecOutcome {
    let spec = match HttpSpec::from_params(params) {
        Ok(spec) => spec,
        Err(error) => return ExecOutcome::failed(error),
    };
    let shown_url = redacted(&spec.url);

    let client = match reqwest::Client::builder()
        .timeout(limits.timeout)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
    {
        Ok(client) => client,
        Err(e) => return ExecOutcome::failed(format!("cannot build HTTP client: {}", chain(e))),
    };

    let started = Instant::now();
    let mut request = client.request(spec.method, spec.url).headers(spec.headers);
    if let Some(body) = spec.body {
        request = request.body(body);
    }

    let mut response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            let output = json!({ "duration_ms": duration_ms(started.elapsed()) });
            return if e.is_timeout() {
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
        None => ExecOutcome::Failed {
            error: format!("HTTP status {}", status.as_u16()),
            output,
        },
    }
}

struct HttpSpec {
    url: Url,
    method: Method,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

impl HttpSpec {
    fn from_params(params: &Map<String, Value>) -> Result<HttpSpec, String> {
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

        let method = match params.get("method") {
            None | Some(Value::Null) => Method::GET,
            Some(Value::String(m)) => Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("params.method {m:?} is not a valid HTTP method"))?,
            Some(_) => return Err("params.method must be a string".to_string()),
        };

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
