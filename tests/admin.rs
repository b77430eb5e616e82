//! The admin API (feature `dashboard`): authentication, every endpoint, the gate obeying its
//! decisions, admin actions recorded as events, and no secret in what it shows.
#![cfg(feature = "dashboard")]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use common::{body_text, TestApp};
use tower::ServiceExt;
use tower_siem::admin::{token_fingerprint, AdminError};
use tower_siem::event::SharedEvent;
use tower_siem::sink::{BoxFuture, Sink, SinkError};
use tower_siem::Siem;

const TOKEN: &str = "s3cret-admin-token-0123456789abcdef";
const ADMIN_PEER: &str = "198.51.100.2:40000";
const ATTACKER: &str = "203.0.113.7";
const LONG: Duration = Duration::from_secs(10);

/// Every event delivered, in order.
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

impl Collect {
    fn named(&self, prefix: &str) -> Vec<SharedEvent> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|e| e.name.as_str().starts_with(prefix))
            .cloned()
            .collect()
    }
}

fn admin(siem: &Siem) -> Router {
    siem.admin_router(TOKEN).unwrap()
}

/// A request to the admin API from `ADMIN_PEER`, with `auth` as its `Authorization` header.
fn request(method: &str, uri: &str, auth: Option<&str>, body: Option<&str>) -> Request<Body> {
    let peer: SocketAddr = ADMIN_PEER.parse().unwrap();
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .extension(ConnectInfo(peer));
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    match body {
        Some(text) => b
            .header("content-type", "application/json")
            .body(Body::from(text.to_owned()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

async fn call(router: &Router, req: Request<Body>) -> Response<Body> {
    router.clone().oneshot(req).await.unwrap()
}

/// Sends an authorised request; returns the status and the JSON body.
async fn api(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let bearer = format!("Bearer {TOKEN}");
    let res = call(router, request(method, uri, Some(&bearer), body)).await;
    let status = res.status();
    assert_eq!(
        res.headers()["content-type"],
        "application/json",
        "{method} {uri}"
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let text = body_text(res).await;
    (status, serde_json::from_str(&text).unwrap())
}

async fn assert_unauthorized(router: &Router, req: Request<Body>) {
    let what = format!("{} {:?}", req.uri(), req.headers().get("authorization"));
    let res = call(router, req).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert_eq!(res.headers()["content-type"], "application/json");
    let text = body_text(res).await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["error"].is_string(), "{text}");
    assert!(
        !text.contains("s3cret") && !text.contains("wrong"),
        "{text}"
    );
}

#[tokio::test]
async fn every_route_wants_the_token() {
    let siem = Siem::builder().build().unwrap();
    let router = admin(&siem);
    let wrong_same_length = format!("Bearer {}", TOKEN.replace("0123", "9999"));
    let mut flipped = TOKEN.as_bytes().to_vec();
    *flipped.last_mut().unwrap() ^= 1;
    let flipped = format!("Bearer {}", String::from_utf8(flipped).unwrap());
    let prefix = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let longer = format!("Bearer {TOKEN}x");
    let basic = format!("Basic {TOKEN}");
    let bare = TOKEN.to_owned();
    for uri in [
        "/api/offenders",
        "/api/stats",
        "/api/entities/ip:203.0.113.7",
        "/api/nowhere",
    ] {
        assert_unauthorized(&router, request("GET", uri, None, None)).await;
        for auth in [
            "Bearer wrong-token-of-some-length",
            &wrong_same_length,
            &flipped,
            &prefix,
            &longer,
            &basic,
            &bare,
            "Bearer ",
            "",
        ] {
            assert_unauthorized(&router, request("GET", uri, Some(auth), None)).await;
        }
    }
    for action in ["block", "unblock", "allow"] {
        let uri = format!("/api/entities/ip:{ATTACKER}/{action}");
        let body = Some(r#"{"for": "10m"}"#);
        assert_unauthorized(&router, request("POST", &uri, None, body)).await;
        assert_unauthorized(&router, request("POST", &uri, Some(&flipped), body)).await;
    }
    // Two Authorization headers, one right: refused.
    let mut req = request("GET", "/api/stats", Some(&format!("Bearer {TOKEN}")), None);
    req.headers_mut()
        .append("authorization", "Bearer nope".parse().unwrap());
    assert_unauthorized(&router, req).await;
    // Nothing was changed by the refused actions.
    assert!(siem.offenders().is_empty());
    assert_eq!(siem.stats().engine.events, 0);

    // The right token, in any case of the scheme.
    let (status, v) = api(&router, "GET", "/api/offenders", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, serde_json::json!([]));
    let lower = format!("bearer {TOKEN}");
    let res = call(&router, request("GET", "/api/stats", Some(&lower), None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    // An unknown path or method, once authorised: JSON 404 and 405.
    let (status, v) = api(&router, "GET", "/api/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["error"].is_string());
    let (status, v) = api(&router, "GET", "/api/entities/ip:203.0.113.7/block", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(v["error"].is_string());
}

#[tokio::test]
async fn weak_tokens_are_refused_at_build() {
    let siem = Siem::builder().build().unwrap();
    let err = siem.admin_router("hunter2").unwrap_err();
    assert_eq!(err, AdminError::TokenTooShort { len: 7 });
    let msg = err.to_string();
    assert!(msg.contains("16") && !msg.contains("hunter2"), "{msg}");
    assert!(siem.admin_router("0123456789abcde").is_err());
    assert!(siem.admin_router("").is_err());
    let err = siem
        .admin_router("0123456789abcdef\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("whitespace"), "{err}");
    assert!(siem.admin_router("0123456789 abcdef").is_err());
    assert!(siem.admin_router("0123456789abcdef").is_ok());
    // A std error, for `?` in main.
    let _: Box<dyn std::error::Error> = Box::new(err_of(&siem));
}

fn err_of(siem: &Siem) -> AdminError {
    siem.admin_router("short").unwrap_err()
}

#[tokio::test]
async fn a_block_is_obeyed_by_the_gate_and_an_unblock_lifts_it() {
    let app = TestApp::new();
    let router = admin(&app.siem);
    assert_eq!(app.get(ATTACKER, "/").await.status(), StatusCode::OK);

    let uri = format!("/api/entities/ip:{ATTACKER}/block");
    let (status, v) = api(&router, "POST", &uri, Some(r#"{"for": "10m"}"#)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["entity"], format!("ip:{ATTACKER}"));
    assert_eq!(v["state"], "blocked");
    assert_eq!(v["verdict"]["action"], "block");
    assert_eq!(v["time_left_ms"], 600_000);
    let before = app.calls();
    assert_eq!(app.get(ATTACKER, "/").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.calls(), before);
    // Someone else is not concerned.
    assert_eq!(app.get("203.0.113.8", "/").await.status(), StatusCode::OK);

    // The block shows in the offenders, with the time left.
    app.clock.advance(Duration::from_secs(60));
    let (status, v) = api(&router, "GET", "/api/offenders", None).await;
    assert_eq!(status, StatusCode::OK);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["entity"], format!("ip:{ATTACKER}"));
    assert_eq!(list[0]["time_left_ms"], 540_000);
    let (status, v) = api(
        &router,
        "GET",
        &format!("/api/entities/ip:{ATTACKER}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["state"], "blocked");
    assert_eq!(v["time_left_ms"], 540_000);

    let uri = format!("/api/entities/ip:{ATTACKER}/unblock");
    let (status, v) = api(&router, "POST", &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        serde_json::json!({"entity": format!("ip:{ATTACKER}"), "state": "none"})
    );
    assert_eq!(app.get(ATTACKER, "/").await.status(), StatusCode::OK);
    let (_, v) = api(&router, "GET", "/api/offenders", None).await;
    assert_eq!(v, serde_json::json!([]));
}

#[tokio::test]
async fn networks_and_users_are_named_in_display_form() {
    let app = TestApp::new();
    let router = admin(&app.siem);
    let (status, v) = api(
        &router,
        "POST",
        "/api/entities/net:203.0.113.0%2F24/block",
        Some(r#"{"for": "2h"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["entity"], "net:203.0.113.0/24");
    assert_eq!(v["time_left_ms"], 7_200_000);
    assert_eq!(
        app.get("203.0.113.99", "/").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.get("198.51.100.9", "/").await.status(), StatusCode::OK);
    let (status, v) = api(&router, "GET", "/api/entities/net:203.0.113.0%2F24", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["state"], "blocked");

    let (status, v) = api(
        &router,
        "POST",
        "/api/entities/user:alice/block",
        Some(r#"{"for": "30s"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["entity"], "user:alice");
    assert_eq!(v["time_left_ms"], 30_000);
    let (status, _) = api(&router, "GET", "/api/entities/user:alice", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_allowed_attack_tool_passes() {
    let app = TestApp::new();
    let router = admin(&app.siem);
    let sqlmap = "sqlmap/1.7.2#stable (https://sqlmap.org)";
    // Without the allow, the tool is blocked at once.
    assert_eq!(
        app.get_ua("203.0.113.50", "/", sqlmap).await.status(),
        StatusCode::FORBIDDEN
    );

    let uri = format!("/api/entities/ip:{ATTACKER}/allow");
    let (status, v) = api(&router, "POST", &uri, Some(r#"{"for": "1h"}"#)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "allowed");
    assert_eq!(v["verdict"]["action"], "allow");
    assert_eq!(v["time_left_ms"], 3_600_000);
    for i in 0..20 {
        let res = app
            .get_ua(ATTACKER, &format!("/search?q=%27+OR+1%3D1--{i}"), sqlmap)
            .await;
        assert_eq!(res.status(), StatusCode::OK, "request {i}");
    }
    // An allow also lifts a block.
    let ip = "203.0.113.50";
    let (status, v) = api(
        &router,
        "POST",
        &format!("/api/entities/ip:{ip}/allow"),
        Some(r#"{"for": "1h"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["state"], "allowed");
    assert_eq!(app.get_ua(ip, "/", sqlmap).await.status(), StatusCode::OK);
    // Once the allow lapses, the tool is blocked again.
    app.clock.advance(Duration::from_secs(3601));
    assert_eq!(
        app.get_ua(ATTACKER, "/", sqlmap).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn bad_entities_durations_and_bodies_are_400_and_unknown_entities_404() {
    let app = TestApp::new();
    let router = admin(&app.siem);
    for entity in [
        "alice",
        "ip:not-an-address",
        "ip:203.0.113.300",
        "host:example.com",
        "user:",
        "net:203.0.113.0%2F99",
        "%FF%FE",
    ] {
        let (status, v) = api(&router, "GET", &format!("/api/entities/{entity}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{entity}: {v}");
        assert!(v["error"].as_str().unwrap().contains("entity"), "{v}");
        let uri = format!("/api/entities/{entity}/block");
        let (status, _) = api(&router, "POST", &uri, Some(r#"{"for": "10m"}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{entity}");
        let uri = format!("/api/entities/{entity}/unblock");
        let (status, _) = api(&router, "POST", &uri, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{entity}");
    }

    for entity in ["ip:192.0.2.1", "user:nobody", "net:192.0.2.0%2F24"] {
        let (status, v) = api(&router, "GET", &format!("/api/entities/{entity}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{entity}: {v}");
        assert!(v["error"].is_string());
    }

    let uri = format!("/api/entities/ip:{ATTACKER}/block");
    for body in [
        r#"{"for": "0s"}"#,
        r#"{"for": "500ms"}"#,
        r#"{"for": "366d"}"#,
        r#"{"for": "10 fortnights"}"#,
        r#"{"for": "-5m"}"#,
        r#"{"for": ""}"#,
        r#"{"for": "1e400"}"#,
        r#"{"duration": "10m"}"#,
        r#"{"for": "10m", "extra": 1}"#,
        r#"{}"#,
        "10m",
        "",
    ] {
        let (status, v) = api(&router, "POST", &uri, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["error"].is_string());
        let allow = uri.replace("/block", "/allow");
        let (status, _) = api(&router, "POST", &allow, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    // The bounds themselves are accepted.
    for body in [r#"{"for": "1s"}"#, r#"{"for": "365d"}"#, r#"{"for": 60}"#] {
        let (status, v) = api(&router, "POST", &uri, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{body}: {v}");
    }
    // Nothing was blocked by a refused request.
    assert!(app
        .siem
        .offenders()
        .iter()
        .all(|o| o.entity.to_string() == format!("ip:{ATTACKER}")));
}

#[tokio::test]
async fn admin_actions_are_recorded_as_events_that_no_rule_reads() {
    let sink = Arc::new(Collect::default());
    let app = TestApp::with(|b| b.sink(sink.clone()), |l| l);
    let router = admin(&app.siem);
    let rule_hits = |siem: &Siem| -> u64 {
        let s = siem.stats().engine;
        s.rules.iter().map(|r| r.hits + r.shadow_hits).sum()
    };
    let hits_before = rule_hits(&app.siem);
    let events_before = app.siem.stats().engine.events;

    let base = format!("/api/entities/ip:{ATTACKER}");
    let (status, _) = api(
        &router,
        "POST",
        &format!("{base}/block"),
        Some(r#"{"for": "10m"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api(&router, "POST", &format!("{base}/unblock"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api(
        &router,
        "POST",
        &format!("{base}/allow"),
        Some(r#"{"for": "1h"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Reads and refused requests are not actions.
    api(&router, "GET", "/api/offenders", None).await;
    api(&router, "GET", &base, None).await;
    api(
        &router,
        "POST",
        &format!("{base}/block"),
        Some(r#"{"for": "0s"}"#),
    )
    .await;
    let refused = request(
        "POST",
        &format!("{base}/unblock"),
        Some("Bearer nope-nope-nope-nope"),
        None,
    );
    assert_eq!(
        call(&router, refused).await.status(),
        StatusCode::UNAUTHORIZED
    );

    assert!(app.siem.flush_async(LONG).await);
    let events = sink.named("admin.");
    let names: Vec<_> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["admin.block", "admin.unblock", "admin.allow"]);
    assert_eq!(app.siem.stats().engine.events, events_before + 3);
    let fp = token_fingerprint(TOKEN);
    for (e, dur) in events.iter().zip([Some("10m"), None, Some("1h")]) {
        let attr = |k: &str| {
            e.attrs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(attr("entity"), Some(&*format!("ip:{ATTACKER}")), "{e:?}");
        assert_eq!(e.subject.ip, Some(ATTACKER.parse().unwrap()), "{e:?}");
        assert_eq!(attr("for"), dur, "{e:?}");
        assert_eq!(attr("client"), Some(ADMIN_PEER), "{e:?}");
        assert_eq!(attr("operator"), Some(&*fp), "{e:?}");
        let json = serde_json::to_string(&**e).unwrap();
        assert!(!json.contains(TOKEN) && !json.contains("s3cret"), "{json}");
    }
    // No rule read them, and neither the admin's address nor the target gained a score.
    assert_eq!(rule_hits(&app.siem), hits_before);
    let peer: SocketAddr = ADMIN_PEER.parse().unwrap();
    let admin_ip = tower_siem::engine::EntityKey::Ip(peer.ip());
    assert!(app.siem.explain(&admin_ip).is_none());
    assert!(app.siem.offenders().is_empty());

    // Many actions in a row change nothing either.
    for _ in 0..50 {
        api(&router, "POST", &format!("{base}/unblock"), None).await;
    }
    assert_eq!(rule_hits(&app.siem), hits_before);
    assert!(app.siem.offenders().is_empty());
}

#[tokio::test]
async fn without_connect_info_the_client_is_left_out() {
    let sink = Arc::new(Collect::default());
    let siem = Siem::builder().sink(sink.clone()).build().unwrap();
    let router = admin(&siem);
    let req = Request::builder()
        .method("POST")
        .uri("/api/entities/user:mallory/block")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(r#"{"for": "7d"}"#))
        .unwrap();
    let res = call(&router, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(siem.flush_async(LONG).await);
    let events = sink.named("admin.");
    assert_eq!(events.len(), 1);
    let keys: Vec<_> = events[0].attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["entity", "for", "operator"]);
}

#[tokio::test]
async fn mounted_under_a_prefix() {
    let siem = Siem::builder().build().unwrap();
    let app: Router = Router::new()
        .route("/", axum::routing::get(|| async { "home" }))
        .layer(siem.layer())
        .nest("/_siem", admin(&siem));
    let (status, v) = api(&app, "GET", "/_siem/api/stats", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["engine"]["events"].is_u64(), "{v}");
    assert!(v["pipeline"].is_object(), "{v}");
    assert_unauthorized(&app, request("GET", "/_siem/api/stats", None, None)).await;
    assert_unauthorized(&app, request("GET", "/_siem/anything", None, None)).await;
    let (status, _) = api(&app, "GET", "/_siem/anything", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn samples_shown_by_the_api_carry_no_secret() {
    let app = TestApp::new();
    let router = admin(&app.siem);
    let auth = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNlY3JldA";
    let uris = [
        "/search?password=hunter2secret&q=%27%20OR%201%3D1--",
        "/search?password=hunter2secret&q=' OR 1=1--",
        "/search?q=%27%20OR%201%3D1--&password=hunter2secret",
        "/search?q=%27%20OR%201%3D1--hunter2secret&password=hunter2secret",
        "/search?password=hunter2secret%27%20OR%201%3D1--",
        "/search?password=%27%20OR%201%3D1--%20hunter2secret",
        "/search?q=%27+UNION+SELECT+password+FROM+users--&api_key=hunter2secret",
        "/search?access_token=hunter2secret&q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E&secret=hunter2secret",
        "/search?user%5Bpassword%5D=hunter2secret&q=%27%20OR%201%3D1--",
    ];
    for (i, uri) in uris.iter().enumerate() {
        // One network each: three blocked addresses of a /24 would block it as well.
        let ip = format!("198.18.{i}.7");
        // A raw `'` and spaces are not valid in a URI: send them encoded the same way a
        // lenient client would, keeping the rest as written.
        let uri = uri.replace(' ', "%20").replace('\'', "%27");
        for _ in 0..3 {
            let req = common::req("GET", &uri, &ip)
                .header("authorization", auth)
                .body(Body::empty())
                .unwrap();
            app.send(req).await;
        }
        let entity = format!("/api/entities/ip:{ip}");
        let (status, one) = api(&router, "GET", &entity, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let json = one.to_string();
        assert!(
            json.contains("\"sample\""),
            "{uri}: a rule fired with a sample: {json}"
        );
        for secret in ["hunter2", "eyJhbGciOiJIUzI1NiJ9", "c2lnbmF0dXJl"] {
            assert!(!json.contains(secret), "{uri}: {json}");
        }
    }
    let (status, list) = api(&router, "GET", "/api/offenders", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), uris.len(), "{list}");
    let json = list.to_string();
    for secret in ["hunter2", "eyJhbGciOiJIUzI1NiJ9", "c2lnbmF0dXJl"] {
        assert!(!json.contains(secret), "{json}");
    }
}

#[tokio::test]
async fn users_are_named_as_the_application_names_them_when_ids_are_hashed() {
    let sink = Arc::new(Collect::default());
    let redactor = tower_siem::event::Redactor::default().hash_user_ids(true);
    let siem = Siem::builder()
        .redactor(redactor)
        .sink(sink.clone())
        .build()
        .unwrap();
    let router = admin(&siem);
    let (status, v) = api(
        &router,
        "POST",
        "/api/entities/user:alice/block",
        Some(r#"{"for": "10m"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Shown, and recorded, in stored form: the name itself never leaves.
    let shown = v["entity"].as_str().unwrap().to_owned();
    assert!(
        shown.starts_with("user:") && !shown.contains("alice"),
        "{shown}"
    );
    let (status, v) = api(&router, "GET", "/api/entities/user:alice", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["entity"], shown.as_str());
    assert_eq!(v["state"], "blocked");
    assert!(siem.flush_async(LONG).await);
    let events = sink.named("admin.");
    assert_eq!(events.len(), 1);
    let json = serde_json::to_string(&*events[0]).unwrap();
    assert!(!json.contains("alice"), "{json}");
    // The subject carries the hash, so the event still says whom it was about.
    assert_eq!(
        events[0].subject.user.as_deref(),
        Some(&shown["user:".len()..]),
        "{json}"
    );
}

/// `GET /metrics`: `Siem::stats()` in the Prometheus text format, behind the same token.
#[tokio::test]
async fn metrics_are_the_stats_in_prometheus_text() {
    let collect = Arc::new(Collect::default());
    let siem = Siem::builder()
        .sink(SharedSink(collect.clone()))
        .build()
        .unwrap();
    let router = admin(&siem);
    assert_unauthorized(&router, request("GET", "/metrics", None, None)).await;

    // An attack tool, so a rule has hits, and an event through the sink.
    let gate = Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(siem.layer());
    let req = Request::get("/")
        .header("user-agent", "sqlmap/1.7")
        .extension(ConnectInfo(SocketAddr::new(ATTACKER.parse().unwrap(), 1)))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        gate.oneshot(req).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert!(siem.flush_async(LONG).await);

    let bearer = format!("Bearer {TOKEN}");
    let res = call(&router, request("GET", "/metrics", Some(&bearer), None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = body_text(res).await;
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
    };
    let stats = siem.stats();
    assert_eq!(value("tower_siem_engine_events_total"), stats.engine.events);
    let scanner = stats
        .engine
        .rules
        .iter()
        .find(|r| r.id == "sig.scanner_ua")
        .unwrap();
    assert!(scanner.hits >= 1);
    assert_eq!(
        value("tower_siem_rule_hits_total{rule=\"sig.scanner_ua\",shadow=\"false\"}"),
        scanner.hits
    );
    assert_eq!(value("tower_siem_decisions_held"), 1);
    let sink = &stats.pipeline.sinks[0];
    assert!(sink.delivered >= 1);
    assert_eq!(
        value("tower_siem_sink_events_delivered_total{sink=\"collect\",index=\"0\"}"),
        sink.delivered
    );
    assert_eq!(
        value("tower_siem_sink_events_dropped_total{sink=\"collect\",index=\"0\",reason=\"queue_full\"}"),
        0
    );
    // Verdicts by action (the blocked request), entities blocked now.
    assert_eq!(value("tower_siem_verdicts_total{action=\"block\"}"), 1);
    assert_eq!(value("tower_siem_verdicts_total{action=\"allow\"}"), 0);
    assert_eq!(stats.engine.verdicts.block, 1);
    assert_eq!(value("tower_siem_entities_blocked"), 1);
    // The sink's write durations, as a histogram: cumulative buckets ending at the count.
    let writes = sink.write_seconds.count();
    assert!(writes >= 1, "{sink:?}");
    let series = "tower_siem_sink_write_seconds";
    assert_eq!(
        value(&format!("{series}_count{{sink=\"collect\",index=\"0\"}}")),
        writes
    );
    assert_eq!(
        value(&format!(
            "{series}_bucket{{sink=\"collect\",index=\"0\",le=\"+Inf\"}}"
        )),
        writes
    );
    let buckets: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{series}_bucket")))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 11);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(text.contains(&format!("# TYPE {series} histogram")));
    // Every sample line belongs to a family announced with its type.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
            .unwrap_or(name);
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{name} has no TYPE line"
        );
    }
    assert!(!text.contains(TOKEN));
}

/// Shares one collector between the test and the pipeline.
struct SharedSink(Arc<Collect>);

impl Sink for SharedSink {
    fn name(&self) -> &str {
        "collect"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        self.0.write(batch)
    }
}
