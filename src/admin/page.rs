//! The dashboard: an HTML page, its script and styles, and the browser's way in (a login form
//! that trades the token for a session cookie).
//!
//! Everything is compiled into the crate (see `assets/README.md`); nothing is loaded from the
//! network. The page is plain HTML with its script in its own file, served under a
//! `Content-Security-Policy` that allows scripts, styles and connections to this origin only.
//!
//! A browser cannot send `Authorization: Bearer` on navigation, so an unauthenticated `GET`
//! that accepts HTML gets `401` with a login form instead of the JSON answer. The form posts
//! the token to `login`; the right one (compared in constant time) opens a session: a random
//! 256-bit id in a cookie (`HttpOnly; SameSite=Strict`, `Path` the mount path, `Secure` when
//! the request came over HTTPS as far as the request tells: an `https` URI, or
//! `X-Forwarded-Proto: https` from a proxy), held in memory for 12 hours, at most 1,024 at a
//! time (the oldest is dropped). A request with that cookie is let through like one with the
//! bearer token, except that a request other than `GET` or `HEAD` must also carry
//! `X-Siem-Request: 1`: the page's `fetch` sends it, a form on another site cannot (a custom
//! header needs CORS, which this router never grants). `POST logout` ends the session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;

use super::{constant_time_eq, error, unauthorized, Admin};
use crate::event::{Event, Subject};
use crate::PeerAddr;

/// The session cookie's name.
pub(super) const COOKIE: &str = "tower_siem_session";

/// The header a cookie-authenticated request other than `GET` or `HEAD` must carry, with the
/// value `1`.
pub(super) const CSRF_HEADER: &str = "x-siem-request";

/// The most sessions held at once; the oldest is dropped to make room.
const MAX_SESSIONS: usize = 1024;

/// How long a session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

const PAGE: &str = include_str!("assets/dashboard.html");
const LOGIN: &str = include_str!("assets/login.html");

/// Every asset: its name under `assets/`, its content type, its bytes.
pub(super) const ASSETS: &[(&str, &str, &str)] = &[
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("assets/dashboard.css"),
    ),
    (
        "uplot-1.6.32.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/uplot-1.6.32.iife.min.js"),
    ),
    (
        "uplot-1.6.32.min.css",
        "text/css; charset=utf-8",
        include_str!("assets/uplot-1.6.32.min.css"),
    ),
    (
        "uplot.LICENSE",
        "text/plain; charset=utf-8",
        include_str!("assets/uplot.LICENSE"),
    ),
];

/// The page's policy: this origin only, no inline script or style, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; \
                   form-action 'self'; frame-ancestors 'none'";

/// The page, its assets, login and logout, to merge into the admin router.
pub(super) fn routes() -> Router<Admin> {
    Router::new()
        .route("/", get(page))
        .route("/assets/{name}", get(asset))
        .route("/login", post(login))
        .route("/logout", post(logout))
}

/// Open sessions: id → when it was opened.
#[derive(Default)]
pub(super) struct Sessions {
    open: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// Opens a session and returns its id: 256 random bits (two v4 UUIDs' worth, from the
    /// operating system's generator through `uuid`'s `fast-rng`), as 64 hex digits.
    fn open(&self) -> String {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = Instant::now();
        let mut open = self.open.lock();
        open.retain(|_, t| now.duration_since(*t) < SESSION_TTL);
        while open.len() >= MAX_SESSIONS {
            let Some(oldest) = open.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) else {
                break;
            };
            open.remove(&oldest);
        }
        open.insert(id.clone(), now);
        id
    }

    /// Whether `id` names an open session that has not expired.
    fn valid(&self, id: &str) -> bool {
        let mut open = self.open.lock();
        match open.get(id) {
            Some(t) if t.elapsed() < SESSION_TTL => true,
            Some(_) => {
                open.remove(id);
                false
            }
            None => false,
        }
    }

    fn close(&self, id: &str) {
        self.open.lock().remove(id);
    }
}

/// The session id of the request's cookie, if it has one of the right shape.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// How a request that carries no valid bearer token fares.
pub(super) enum Access {
    /// A valid session, and the CSRF header where one is needed.
    Session,
    /// Open to all: the assets and the login form's target.
    Public,
    /// Refused with this answer.
    Refused(Response),
}

/// Decides on a request without a valid bearer token.
pub(super) fn access(admin: &Admin, req: &Request) -> Access {
    let path = req.uri().path();
    let method = req.method();
    if ((method == Method::GET || method == Method::HEAD) && path.starts_with("/assets/"))
        || (method == Method::POST && path == "/login")
    {
        return Access::Public;
    }
    let session = session_id(req.headers()).is_some_and(|id| admin.sessions.valid(id));
    if !session {
        return Access::Refused(refusal(req));
    }
    let safe = method == Method::GET || method == Method::HEAD;
    let marked = req
        .headers()
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    if safe || marked {
        Access::Session
    } else {
        Access::Refused(error(
            StatusCode::FORBIDDEN,
            "a request authenticated by the session cookie must carry `X-Siem-Request: 1`",
        ))
    }
}

/// `401`: the login form for a browser's `GET`, the JSON answer for anything else.
fn refusal(req: &Request) -> Response {
    let wants_html = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    if wants_html && req.method() == Method::GET {
        login_form(req, StatusCode::UNAUTHORIZED, "")
    } else {
        unauthorized()
    }
}

/// Where the admin router is mounted (`/_siem`), from the path the client asked for and the
/// path left once nesting stripped the prefix; empty at the root.
fn mount_path(req: &Request) -> String {
    let inner = req.uri().path();
    let outer = req
        .extensions()
        .get::<OriginalUri>()
        .map_or(inner, |o| o.0.path());
    let prefix = outer
        .strip_suffix(inner)
        .or_else(|| (inner == "/").then_some(outer))
        .unwrap_or("");
    prefix.trim_end_matches('/').to_owned()
}

/// Text made safe for an HTML attribute or element.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML document (the page or the login form) with its `<base href>` set to the mount
/// path, so that its relative links work at `/_siem` and `/_siem/` alike.
fn html(req: &Request, status: StatusCode, template: &str, message: &str) -> Response {
    let base = escape_html(&format!("{}/", mount_path(req)));
    let body = template
        .replace("{{base}}", &base)
        .replace("{{message}}", &escape_html(message));
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

fn login_form(req: &Request, status: StatusCode, message: &str) -> Response {
    let mut res = html(req, status, LOGIN, message);
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tower-siem\""),
        );
    }
    res
}

async fn page(req: Request) -> Response {
    html(&req, StatusCode::OK, PAGE, "")
}

async fn asset(Path(name): Path<String>) -> Response {
    let Some((_, kind, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return error(StatusCode::NOT_FOUND, "no such asset");
    };
    let mut res = (*body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // The versioned uPlot files never change under their name; the page's own files change
    // with the crate, so they are revalidated after an hour.
    let cache = if name.starts_with("uplot-") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=3600"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// The `token` field of a form-encoded body, decoded.
fn form_token(body: &[u8]) -> Option<Vec<u8>> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let value = pair.strip_prefix(b"token=")?;
        let spaced: Vec<u8> = value
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        Some(percent_encoding::percent_decode(&spaced).collect())
    })
}

/// Whether a browser says the request comes from another site (or another site of the same
/// domain): `Sec-Fetch-Site` other than `same-origin` or `none`; without that header, an
/// `Origin` that is `null` or whose host is not the `Host` asked for.
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

/// Whether the request came over HTTPS, as far as it tells: an `https` URI (HTTP/2), or
/// `X-Forwarded-Proto: https` from a proxy in front.
fn over_https(req: &Request) -> bool {
    req.uri().scheme_str() == Some("https")
        || req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn client(req: &Request) -> Option<SocketAddr> {
    let ext = req.extensions();
    ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<PeerAddr>().map(|p| p.0))
}

/// Records a login as an event (`admin.login`, outcome `success` or `failure`) about the
/// client's address; the token is never in it.
fn record_login(admin: &Admin, client: Option<SocketAddr>, success: bool) {
    let mut event =
        Event::new("admin.login").attr("outcome", if success { "success" } else { "failure" });
    if let Some(addr) = client {
        event = event
            .subject(Subject::ip(addr.ip()))
            .attr("client", addr.to_string());
    }
    if success {
        event = event.attr("operator", &*admin.operator);
    }
    admin.siem.fire_prepared(event);
}

async fn login(State(admin): State<Admin>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let req = Request::from_parts(parts, axum::body::Body::empty());
    if cross_site(req.headers()) {
        return error(StatusCode::FORBIDDEN, "login from another site refused");
    }
    let who = client(&req);
    let right = form_token(&body).is_some_and(|t| constant_time_eq(&admin.token, &t));
    record_login(&admin, who, right);
    if !right {
        return login_form(&req, StatusCode::UNAUTHORIZED, "Wrong token.");
    }
    let id = admin.sessions.open();
    let mount = mount_path(&req);
    let cookie_path = if mount.is_empty() { "/" } else { &mount };
    let secure = if over_https(&req) { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path={cookie_path}; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    );
    // The mount path itself: `Router::nest` routes `/_siem` to the page but not `/_siem/`
    // (`nest_service` routes both); the page's `<base href>` makes either work.
    let location = cookie_path.to_owned();
    let mut res = StatusCode::SEE_OTHER.into_response();
    let h = res.headers_mut();
    if let (Ok(c), Ok(l)) = (
        HeaderValue::from_str(&cookie),
        HeaderValue::from_str(&location),
    ) {
        h.insert(header::SET_COOKIE, c);
        h.insert(header::LOCATION, l);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn logout(State(admin): State<Admin>, req: Request) -> Response {
    if let Some(id) = session_id(req.headers()) {
        admin.sessions.close(id);
    }
    let mount = mount_path(&req);
    let cookie_path = if mount.is_empty() { "/" } else { &mount };
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path={cookie_path}; Max-Age=0");
    let mut res = super::ok(serde_json::json!({ "ok": true }));
    if let Ok(c) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, c);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_tokens_are_decoded() {
        assert_eq!(form_token(b"token=abc"), Some(b"abc".to_vec()));
        assert_eq!(form_token(b"x=1&token=a%2Bb%21"), Some(b"a+b!".to_vec()));
        assert_eq!(form_token(b"token=a+b"), Some(b"a b".to_vec()));
        assert_eq!(form_token(b"tokens=abc"), None);
        assert_eq!(form_token(b""), None);
        assert_eq!(form_token(b"token=%zz%"), Some(b"%zz%".to_vec()));
    }

    #[test]
    fn session_ids_are_found_in_cookies() {
        let id = "a".repeat(64);
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE}={id}; y=2")).unwrap(),
        );
        assert_eq!(session_id(&h), Some(id.as_str()));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}=short")).unwrap(),
        );
        assert_eq!(session_id(&h), None);
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::default();
        let first = s.open();
        assert!(s.valid(&first));
        for _ in 0..MAX_SESSIONS {
            s.open();
        }
        assert_eq!(s.open.lock().len(), MAX_SESSIONS);
        assert!(!s.valid(&first), "the oldest session is dropped first");
        assert!(!s.valid("nope"));
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:3000"),
        );
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_site(&h));
        // A browser's own word comes first.
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&h));
        for other in ["cross-site", "same-site"] {
            h.insert("sec-fetch-site", HeaderValue::from_str(other).unwrap());
            assert!(cross_site(&h), "{other}");
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
