//! The dashboard (feature `dashboard`): the page and its assets, the browser's login and
//! session cookie, the CSRF header, and what the embedded files may hold (no external URL, no
//! markup built from data).
#![cfg(feature = "dashboard")]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use common::body_text;
use tower::ServiceExt;
use tower_siem::Siem;

const TOKEN: &str = "s3cret-admin-token-0123456789abcdef";
const HTML: &str = "text/html,application/xhtml+xml,application/xhtml+xml;q=0.9,*/*;q=0.8";

/// The admin router mounted at `/_siem`, as the quickstart does.
fn app(siem: &Siem) -> Router {
    Router::new().nest("/_siem", siem.admin_router(TOKEN).unwrap())
}

fn request(method: &str, uri: &str) -> axum::http::request::Builder {
    let peer: SocketAddr = "198.51.100.2:40000".parse().unwrap();
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:3000")
        .extension(ConnectInfo(peer))
}

async fn call(app: &Router, req: Request<Body>) -> Response<Body> {
    app.clone().oneshot(req).await.unwrap()
}

fn header<'a>(res: &'a Response<Body>, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap_or(""))
}

/// Logs in with the right token; returns the `Cookie` header value the browser would send.
async fn login(app: &Router) -> String {
    let res = call(
        app,
        request("POST", "/_siem/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "http://127.0.0.1:3000")
            .body(Body::from(format!("token={TOKEN}")))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = header(&res, "set-cookie").to_owned();
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn without_auth_a_browser_gets_the_login_form_and_an_api_client_json() {
    let siem = Siem::builder().build().unwrap();
    let app = app(&siem);
    // (`Router::nest` routes `/_siem` but not `/_siem/`: see the `nest_service` test.)
    for uri in ["/_siem", "/_siem/api/offenders", "/_siem/nowhere"] {
        let res = call(
            &app,
            request("GET", uri)
                .header("accept", HTML)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert!(
            header(&res, "content-type").starts_with("text/html"),
            "{uri}"
        );
        assert!(header(&res, "www-authenticate").starts_with("Bearer"));
        assert!(header(&res, "content-security-policy").contains("default-src 'self'"));
        let text = body_text(res).await;
        assert!(
            text.contains(r#"<form method="post" action="login""#),
            "{text}"
        );
        assert!(text.contains(r#"<base href="/_siem/">"#), "{text}");
        assert!(text.contains(r#"name="token""#));
    }
    // An API client (no HTML in Accept) gets the JSON answer, as before.
    let res = call(
        &app,
        request("GET", "/_siem/api/offenders")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&res, "content-type"), "application/json");
    assert!(header(&res, "www-authenticate").starts_with("Bearer"));
    // A POST never gets the form.
    let res = call(
        &app,
        request("POST", "/_siem/api/entities/ip:203.0.113.7/unblock")
            .header("accept", HTML)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&res, "content-type"), "application/json");
}

#[tokio::test]
async fn login_sets_a_strict_http_only_session_cookie() {
    let siem = Siem::builder().build().unwrap();
    let app = app(&siem);
    // Wrong tokens: 401 with the form again, no cookie, the token never echoed.
    for body in ["token=wrong-token-0123456789", "token=", "nothing=here", ""] {
        let res = call(
            &app,
            request("POST", "/_siem/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{body}");
        assert!(res.headers().get("set-cookie").is_none());
        let text = body_text(res).await;
        assert!(text.contains("Wrong token."), "{text}");
        assert!(!text.contains("wrong-token-0123456789") && !text.contains(TOKEN));
    }
    // The right one, percent-encoded as a browser sends it.
    let encoded = TOKEN.replace('-', "%2D");
    let res = call(
        &app,
        request("POST", "/_siem/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={encoded}")))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&res, "location"), "/_siem");
    let cookie = header(&res, "set-cookie");
    assert!(cookie.starts_with("tower_siem_session="), "{cookie}");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("; Path=/_siem"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(!cookie.contains(TOKEN));
    let id = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert_eq!(id.len(), 64);
    // Behind a TLS proxy, Secure.
    let res = call(
        &app,
        request("POST", "/_siem/login")
            .header("x-forwarded-proto", "https")
            .body(Body::from(format!("token={TOKEN}")))
            .unwrap(),
    )
    .await;
    assert!(header(&res, "set-cookie").contains("; Secure"));
    // What a browser sends from the login form itself: 303.
    let res = call(
        &app,
        request("POST", "/_siem/login")
            .header("origin", "http://127.0.0.1:3000")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(format!("token={TOKEN}")))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // From another site: refused.
    let res = call(
        &app,
        request("POST", "/_siem/login")
            .header("origin", "https://evil.example")
            .body(Body::from(format!("token={TOKEN}")))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn logins_are_recorded_without_the_token() {
    use std::sync::{Arc, Mutex};
    use tower_siem::event::SharedEvent;
    use tower_siem::sink::{BoxFuture, Sink, SinkError};

    #[derive(Default)]
    struct Collect(Mutex<Vec<SharedEvent>>);
    impl Sink for Collect {
        fn name(&self) -> &str {
            "collect"
        }
        fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
            self.0.lock().unwrap().extend(batch.iter().cloned());
            Box::pin(async { Ok(()) })
        }
    }
    let sink = Arc::new(Collect::default());
    let siem = Siem::builder().sink(sink.clone()).build().unwrap();
    let app = app(&siem);
    login(&app).await;
    let res = call(
        &app,
        request("POST", "/_siem/login")
            .body(Body::from("token=nope"))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(siem.flush_async(std::time::Duration::from_secs(10)).await);
    let events = sink.0.lock().unwrap().clone();
    let logins: Vec<_> = events
        .iter()
        .filter(|e| e.name.as_str() == "admin.login")
        .collect();
    assert_eq!(logins.len(), 2);
    let json: Vec<String> = logins.iter().map(|e| format!("{e:?}")).collect();
    assert!(
        json[0].contains("success") && json[1].contains("failure"),
        "{json:?}"
    );
    assert!(json
        .iter()
        .all(|j| j.contains("198.51.100.2") && !j.contains(TOKEN)));
}

#[tokio::test]
async fn the_session_cookie_opens_the_page_and_the_api() {
    let siem = Siem::builder().build().unwrap();
    let app = app(&siem);
    let cookie = login(&app).await;

    let res = call(
        &app,
        request("GET", "/_siem")
            .header("accept", HTML)
            .header("cookie", format!("other=1; {cookie}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(&res, "content-type").starts_with("text/html"));
    let csp = header(&res, "content-security-policy").to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    let page = body_text(res).await;
    assert!(page.contains(r#"<base href="/_siem/">"#));
    assert!(page.contains(r#"<script src="assets/dashboard.js" defer></script>"#));
    assert!(page.contains("uplot-1.6.32.iife.min.js"));
    assert!(!page.contains("<script>"), "no inline script");

    let res = call(
        &app,
        request("GET", "/_siem/api/offenders")
            .header("cookie", cookie.as_str())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body_text(res).await, "[]");

    // A change with the cookie alone: refused (a form on another site could send that).
    let block = |extra: Option<&str>| {
        let mut b = request("POST", "/_siem/api/entities/ip:203.0.113.7/block")
            .header("cookie", cookie.as_str())
            .header("content-type", "application/json");
        if let Some(v) = extra {
            b = b.header("x-siem-request", v);
        }
        b.body(Body::from(r#"{"for":"10m"}"#)).unwrap()
    };
    for extra in [None, Some("0"), Some("yes")] {
        let res = call(&app, block(extra)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{extra:?}");
        assert_eq!(header(&res, "content-type"), "application/json");
    }
    assert!(siem.offenders().is_empty(), "nothing was blocked");
    // With the header the page's fetch sends: done.
    let res = call(&app, block(Some("1"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(siem.offenders().len(), 1);

    // A bearer token needs no such header, as before.
    let res = call(
        &app,
        request("POST", "/_siem/api/entities/ip:203.0.113.7/unblock")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    // A made-up session id, or one of the wrong shape: 401.
    for bad in [
        format!("tower_siem_session={}", "0".repeat(64)),
        "tower_siem_session=1".to_owned(),
    ] {
        let res = call(
            &app,
            request("GET", "/_siem/api/stats")
                .header("cookie", bad.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }

    // Logout (a change: the header is needed) ends the session.
    let res = call(
        &app,
        request("POST", "/_siem/logout")
            .header("cookie", cookie.as_str())
            .header("x-siem-request", "1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(&res, "set-cookie").contains("Max-Age=0"));
    let res = call(
        &app,
        request("GET", "/_siem/api/stats")
            .header("cookie", cookie.as_str())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn assets_are_served_with_their_content_types() {
    let siem = Siem::builder().build().unwrap();
    let app = app(&siem);
    for (name, kind) in [
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
        ("uplot-1.6.32.iife.min.js", "text/javascript; charset=utf-8"),
        ("uplot-1.6.32.min.css", "text/css; charset=utf-8"),
        ("uplot.LICENSE", "text/plain; charset=utf-8"),
    ] {
        // No credentials needed: the login form uses the styles, and nothing in them is secret.
        let res = call(
            &app,
            request("GET", &format!("/_siem/assets/{name}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        assert_eq!(header(&res, "content-type"), kind, "{name}");
        assert!(header(&res, "cache-control").contains("max-age="), "{name}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        assert!(!body_text(res).await.is_empty());
    }
    let res = call(
        &app,
        request("GET", "/_siem/assets/uplot-1.6.32.iife.min.js")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(header(&res, "cache-control").contains("immutable"));
    // An unknown asset, or one outside the directory: 404 (still no credentials needed).
    for uri in ["/_siem/assets/nope.js", "/_siem/assets/..%2Fpage.rs"] {
        let res = call(&app, request("GET", uri).body(Body::empty()).unwrap()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
    }
}

/// The embedded files, read from the source tree the crate embeds them from.
fn assets() -> Vec<(&'static str, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/admin/assets");
    [
        "dashboard.html",
        "login.html",
        "dashboard.js",
        "dashboard.css",
        "uplot-1.6.32.iife.min.js",
        "uplot-1.6.32.min.css",
    ]
    .into_iter()
    .map(|name| {
        (
            name,
            std::fs::read_to_string(format!("{dir}/{name}")).unwrap(),
        )
    })
    .collect()
}

#[test]
fn no_asset_refers_to_another_site() {
    // uPlot's one-line banner names its home page; it is a comment, not a load.
    const BANNER: &str = "/*! https://github.com/leeoniya/uPlot (v1.6.32) */";
    for (name, text) in assets() {
        let text = text.replacen(BANNER, "", 1);
        let lower = text.to_ascii_lowercase();
        for needle in [
            "http://",
            "https://",
            "//cdn",
            "url(//",
            "src=\"//",
            "href=\"//",
            "@import",
        ] {
            assert!(!lower.contains(needle), "{name} holds {needle:?}");
        }
    }
}

#[test]
fn the_script_never_builds_markup_from_data() {
    let (_, js) = assets()
        .into_iter()
        .find(|(n, _)| *n == "dashboard.js")
        .unwrap();
    for needle in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "createContextualFragment",
        "setAttribute(\"on",
        "srcdoc",
    ] {
        assert!(!js.contains(needle), "dashboard.js uses {needle}");
    }
    // Timers take functions, never strings.
    assert!(!js.contains("setInterval(\"") && !js.contains("setTimeout(\""));
    let html: String = assets()
        .into_iter()
        .filter(|(n, _)| n.ends_with(".html"))
        .map(|(_, t)| t)
        .collect();
    assert!(!html.contains("<script>"), "inline script");
    // No inline handler (` onclick=`, ` onload=`…): a space, `on`, letters, `=`.
    for (i, _) in html.match_indices(" on") {
        let rest = &html[i + 3..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        assert!(
            letters == 0 || rest.as_bytes().get(letters) != Some(&b'='),
            "inline handler: {}",
            &rest[..letters]
        );
    }
}

#[tokio::test]
async fn mounted_with_nest_service_the_page_answers_with_and_without_the_slash() {
    let siem = Siem::builder().build().unwrap();
    let app = Router::new().nest_service("/_siem", siem.admin_router(TOKEN).unwrap());
    let res = call(
        &app,
        request("GET", "/_siem/")
            .header("accept", HTML)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(body_text(res).await.contains(r#"action="login""#));
    let cookie = login(&app).await;
    for uri in ["/_siem", "/_siem/"] {
        let res = call(
            &app,
            request("GET", uri)
                .header("accept", HTML)
                .header("cookie", cookie.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        assert!(
            body_text(res).await.contains(r#"<base href="/_siem/">"#),
            "{uri}"
        );
    }
}
