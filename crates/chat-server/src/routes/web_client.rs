//! The demo web client (`docs/web-client.md`): one page, one script, one stylesheet and an
//! icon, compiled into the binary so the service needs no static folder and the page makes no
//! request beyond its own origin.
//!
//! Every URL the page uses is relative, so the same bytes work at `/` and behind a proxy that
//! mounts the service under a prefix.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

/// The page's policy: nothing but this origin, and WebSockets to it. `connect-src` names `ws:`
/// and `wss:` explicitly because older browsers do not count them as `'self'`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self' ws: wss:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// A hash of `body`, computed at compile time, so a new binary gets new validators.
    hash: u64,
}

impl Asset {
    const fn new(path: &'static str, content_type: &'static str, body: &'static str) -> Self {
        Self {
            path,
            content_type,
            body,
            hash: fnv1a(body.as_bytes()),
        }
    }

    fn etag(&self) -> String {
        format!("\"{:016x}\"", self.hash)
    }

    fn respond(&self, request: &HttpRequest) -> HttpResponse {
        let etag = self.etag();
        let not_modified = matches_etag(request, &etag);
        // The URLs carry no version, so a long max-age would keep an old script after an
        // upgrade: browsers revalidate every time instead, which costs a 304 with no body.
        let mut response = if not_modified {
            HttpResponse::NotModified()
        } else {
            HttpResponse::Ok()
        };
        response
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ));
        if not_modified {
            return response.finish();
        }
        response.content_type(self.content_type).body(self.body)
    }
}

static ASSETS: [Asset; 4] = [
    Asset::new(
        "/",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    Asset::new(
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    Asset::new(
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
    Asset::new(
        "/favicon.svg",
        "image/svg+xml",
        include_str!("../../web/favicon.svg"),
    ),
];

/// Registers `GET` and `HEAD` for each embedded file (actix sends no body for `HEAD`).
pub fn configure(config: &mut web::ServiceConfig) {
    for asset in &ASSETS {
        let respond = move |request: HttpRequest| async move { asset.respond(&request) };
        config.service(
            super::resource(asset.path)
                .route(web::get().to(respond))
                .route(web::head().to(respond)),
        );
    }
}

/// Whether `If-None-Match` names `etag` (or `*`); weak tags compare by their value.
fn matches_etag(request: &HttpRequest, etag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// 64-bit FNV-1a: a `const fn`, so each asset's validator costs nothing at run time. Not a
/// security hash; it only has to change when the file does.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 0;
    while index < bytes.len() {
        hash ^= bytes[index] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        index += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn every_asset_has_its_own_validator() {
        let mut tags: Vec<String> = ASSETS.iter().map(Asset::etag).collect();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
    }

    #[test]
    fn the_page_loads_only_relative_urls() {
        let page = ASSETS[0].body;
        assert!(page.contains("src=\"app.js\""), "{page}");
        assert!(page.contains("href=\"style.css\""), "{page}");
        // The icon's SVG namespace is a name, not a fetch: it is the one absolute URL allowed.
        for asset in ASSETS
            .iter()
            .filter(|asset| asset.content_type != "image/svg+xml")
        {
            assert!(
                !asset.body.contains("http://"),
                "{} fetches elsewhere",
                asset.path
            );
            assert!(
                !asset.body.contains("https://"),
                "{} fetches elsewhere",
                asset.path
            );
        }
    }
}
