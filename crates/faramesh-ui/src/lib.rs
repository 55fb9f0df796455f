//! The web dashboard. The files under `ui/assets/` are embedded into the binary at build time, so a
//! user never runs a separate build or server. Debug builds read them from disk on every
//! request instead, so a developer editing the UI only reloads the page.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

#[derive(rust_embed::Embed)]
#[folder = "../../ui/assets/"]
struct Assets;

/// Content-Security-Policy for every UI response: scripts, styles and connections only from
/// this origin, no inline script, no framing. Action params are hostile input; even a
/// rendering bug cannot run a script under this policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Routes: `/` (the dashboard) and `/ui/<file>` (its assets).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{*path}", get(asset))
}

/// Whether the embedded assets include the dashboard page (checked by `faramesh doctor`).
pub fn assets_present() -> bool {
    Assets::get("index.html").is_some()
}

async fn index() -> Response {
    serve("index.html")
}

async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

fn serve(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            // The path is the client's: serialised as JSON, whatever characters it holds.
            serde_json::json!({ "detail": format!("Not Found: no UI file {path}") }).to_string(),
        )
            .into_response();
    };
    let mime = file.metadata.mimetype();
    let mut response = Response::new(Body::from(file.data.into_owned()));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn index_is_served_with_a_strict_content_security_policy() {
        let response = router::<()>()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE].to_str().unwrap(),
            "text/html"
        );
    }

    async fn get(path: &str) -> Response {
        router::<()>()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn text(path: &str) -> String {
        String::from_utf8(Assets::get(path).unwrap().data.into_owned()).unwrap()
    }

    /// Every `/ui/...` URL named in `attribute="..."` attributes of the page.
    fn referenced_assets(html: &str) -> Vec<String> {
        let mut found = Vec::new();
        for attribute in ["src=\"", "href=\""] {
            let mut rest = html;
            while let Some(start) = rest.find(attribute) {
                rest = &rest[start + attribute.len()..];
                let end = rest.find('"').unwrap();
                if let Some(path) = rest[..end].strip_prefix("/ui/") {
                    found.push(path.to_string());
                }
            }
        }
        found
    }

    #[tokio::test]
    async fn every_asset_the_page_references_is_served_with_its_type() {
        let html = text("index.html");
        let assets = referenced_assets(&html);
        assert!(assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
        assert!(assets.iter().any(|a| a.ends_with("main.js")), "{assets:?}");
        for asset in assets {
            let response = get(&format!("/ui/{asset}")).await;
            assert_eq!(response.status(), StatusCode::OK, "{asset}");
            let mime = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
            let expected = match asset.rsplit('.').next().unwrap() {
                "js" => "text/javascript",
                "css" => "text/css",
                "svg" => "image/svg+xml",
                other => panic!("unexpected asset type {other}"),
            };
            assert_eq!(mime, expected, "{asset}");
            assert_eq!(
                response.headers()[header::X_CONTENT_TYPE_OPTIONS],
                "nosniff",
                "{asset}"
            );
        }
    }

    #[tokio::test]
    async fn every_module_import_resolves_to_an_asset() {
        for name in Assets::iter().filter(|n| n.ends_with(".js")) {
            let source = text(&name);
            let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            for line in source.lines().filter(|l| l.starts_with("import ")) {
                let target = line.rsplit("from '").next().unwrap();
                let target = target.trim_end_matches(';').trim_end_matches('\'');
                let relative = target.strip_prefix("./").unwrap_or_else(|| {
                    panic!("{name}: only relative imports of sibling modules: {line}")
                });
                let path = if dir.is_empty() {
                    relative.to_string()
                } else {
                    format!("{dir}/{relative}")
                };
                assert!(
                    Assets::get(&path).is_some(),
                    "{name} imports missing {path}"
                );
            }
        }
    }

    /// Action data is attacker-controlled: the UI never turns text into HTML, and the page
    /// needs nothing that the Content-Security-Policy forbids (inline script, inline style).
    #[test]
    fn assets_never_parse_data_as_html_and_need_no_inline_code() {
        for name in Assets::iter() {
            let source = text(&name);
            if name.ends_with(".js") {
                for forbidden in [
                    "innerHTML",
                    "outerHTML",
                    "insertAdjacentHTML",
                    "document.write",
                    "eval(",
                    "new Function",
                    "DOMParser",
                    "createContextualFragment",
                ] {
                    assert!(!source.contains(forbidden), "{name} uses {forbidden}");
                }
            }
            if name.ends_with(".html") {
                let lower = source.to_lowercase();
                assert!(!lower.contains(" style="), "{name}: inline style attribute");
                assert!(!lower.contains("<style"), "{name}: inline style element");
                assert!(!lower.contains("javascript:"), "{name}: javascript: URL");
                for (i, _) in lower.match_indices("<script") {
                    let tag_end = i + lower[i..].find('>').unwrap();
                    assert!(lower[i..tag_end].contains(" src="), "{name}: inline script");
                }
                for handler in [
                    " onclick=",
                    " onload=",
                    " onerror=",
                    " oninput=",
                    " onsubmit=",
                ] {
                    assert!(!lower.contains(handler), "{name}: inline handler {handler}");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_missing_asset_is_a_404_with_detail() {
        let response = router::<()>()
            .oneshot(Request::get("/ui/nope.js").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_dashboard_page_is_present() {
        assert!(assets_present());
        assert!(text("index.html").contains("/ui/js/main.js"));
    }
}
