//! The admin API's run-time network allow-list, stored events and live feed (feature
//! `dashboard`).
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
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_siem::admin::token_fingerprint;
use tower_siem::engine::Clock;
use tower_siem::event::SharedEvent;
use tower_siem::pipeline::MAX_FEED_SUBSCRIBERS;
use tower_siem::sink::{BoxFuture, Sink, SinkError};
use tower_siem::{Event, Siem};

const TOKEN: &str = "s3cret-admin-token-0123456789abcdef";
const ADMIN_PEER: &str = "198.51.100.2:40000";
const SQLMAP: &str = "sqlmap/1.7.2#stable (https://sqlmap.org)";
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
    fn named(&self, name: &str) -> Vec<SharedEvent> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|e| e.name.as_str() == name)
            .cloned()
            .collect()
    }
}

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

/// Opens the feed at `uri` (authorised).
async fn open_feed(router: &Router, uri: &str) -> Response<Body> {
    let bearer = format!("Bearer {TOKEN}");
    call(router, request("GET", uri, Some(&bearer), None)).await
}

/// Reads the feed until `until` holds for what was read, or 5 s pass.
async fn read_feed(body: &mut Body, seen: &mut String, until: impl Fn(&str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !until(seen) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("feed timed out; read so far:\n{seen}"))
            .expect("feed ended")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
}

#[tokio::test]
async fn every_new_route_wants_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let siem = Siem::builder()
        .sink(Arc::new(Collect::default()))
        .build()
        .unwrap();
    let router = siem
        .admin(TOKEN)
        .events(dir.path().join("e.db"))
        .router()
        .unwrap();
    for (method, uri, body) in [
        ("GET", "/api/allowlist", None),
        (
            "POST",
            "/api/allowlist",
            Some(r#"{"cidr": "198.51.100.0/24"}"#),
        ),
        ("DELETE", "/api/allowlist?cidr=198.51.100.0/24", None),
        ("GET", "/api/events", None),
        ("GET", "/api/events?name=auth.failure", None),
        ("GET", "/api/feed", None),
    ] {
        for auth in [None, Some("Bearer wrong-token-of-some-length")] {
            let res = call(&router, request(method, uri, auth, body)).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {uri}");
            assert!(res.headers().contains_key("www-authenticate"));
        }
    }
    // Nothing changed, and nobody is subscribed.
    assert!(siem.allowed_networks().is_empty());
    let subs: Vec<_> = (0..MAX_FEED_SUBSCRIBERS)
        .map(|_| siem.subscribe().unwrap())
        .collect();
    assert!(siem.subscribe().is_none());
    drop(subs);
}

#[tokio::test]
async fn an_allow_listed_network_passes_the_gate_until_removed_or_expired() {
    let sink = Arc::new(Collect::default());
    let app = TestApp::with(
        |b| b.sink(sink.clone()).allow_networks(["10.0.0.0/8"]).unwrap(),
        |l| l,
    );
    let router = app.siem.admin_router(TOKEN).unwrap();
    let ip = "203.0.113.50";
    // The tool is blocked at once.
    assert_eq!(
        app.get_ua(ip, "/", SQLMAP).await.status(),
        StatusCode::FORBIDDEN
    );
    let (status, v) = api(&router, "GET", "/api/allowlist", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        serde_json::json!({"networks": [
            {"cidr": "10.0.0.0/8", "source": "config", "until": null}
        ]})
    );

    // Allow-listed until removed: the blocked client passes.
    let (status, v) = api(
        &router,
        "POST",
        "/api/allowlist",
        Some(r#"{"cidr": "203.0.113.0/24"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"cidr": "203.0.113.0/24", "source": "admin", "until": null})
    );
    for i in 0..5 {
        let res = app
            .get_ua(ip, &format!("/search?q=%27+OR+1%3D1--{i}"), SQLMAP)
            .await;
        assert_eq!(res.status(), StatusCode::OK, "request {i}");
    }
    let (_, v) = api(&router, "GET", "/api/allowlist", None).await;
    assert_eq!(v["networks"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["networks"][1]["cidr"], "203.0.113.0/24");

    // Removed: denied again.
    let (status, v) = api(
        &router,
        "DELETE",
        "/api/allowlist?cidr=203.0.113.0%2F24",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["removed"], "203.0.113.0/24");
    assert_eq!(
        app.get_ua(ip, "/", SQLMAP).await.status(),
        StatusCode::FORBIDDEN
    );
    let (status, _) = api(
        &router,
        "DELETE",
        "/api/allowlist?cidr=203.0.113.0/24",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // For ten minutes, on the SIEM's clock.
    let (status, v) = api(
        &router,
        "POST",
        "/api/allowlist",
        Some(r#"{"cidr": "203.0.113.50", "for": "10m"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["cidr"], "203.0.113.50/32");
    assert_eq!(
        v["until"],
        app.clock.now_millis() + 600_000,
        "until is unix ms"
    );
    assert_eq!(app.get_ua(ip, "/", SQLMAP).await.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(599));
    assert_eq!(app.get_ua(ip, "/", SQLMAP).await.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(2));
    assert_eq!(
        app.get_ua(ip, "/", SQLMAP).await.status(),
        StatusCode::FORBIDDEN
    );
    let (_, v) = api(&router, "GET", "/api/allowlist", None).await;
    assert_eq!(v["networks"].as_array().unwrap().len(), 1, "{v}");

    // Refused: too broad, configured, malformed, out-of-range durations.
    for (body, want) in [
        (r#"{"cidr": "0.0.0.0/0"}"#, StatusCode::BAD_REQUEST),
        (r#"{"cidr": "64.0.0.0/4"}"#, StatusCode::BAD_REQUEST),
        (r#"{"cidr": "::/0"}"#, StatusCode::BAD_REQUEST),
        (r#"{"cidr": "2000::/8"}"#, StatusCode::BAD_REQUEST),
        (r#"{"cidr": "not-a-network"}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"cidr": "192.0.2.0/24", "for": "0s"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"cidr": "192.0.2.0/24", "for": "400d"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"cidr": "192.0.2.0/24", "x": 1}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"cidr": "10.0.0.0/8"}"#, StatusCode::CONFLICT),
    ] {
        let (status, v) = api(&router, "POST", "/api/allowlist", Some(body)).await;
        assert_eq!(status, want, "{body}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let (_, v) = api(
        &router,
        "POST",
        "/api/allowlist",
        Some(r#"{"cidr": "64.0.0.0/4"}"#),
    )
    .await;
    assert!(v["error"].as_str().unwrap().contains("too broad"), "{v}");
    let (status, v) = api(&router, "DELETE", "/api/allowlist?cidr=10.0.0.0/8", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        v["error"].as_str().unwrap().contains("configuration"),
        "{v}"
    );
    let (status, _) = api(&router, "DELETE", "/api/allowlist", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Each change is an event naming the operator by the token's fingerprint.
    assert!(app.siem.flush(LONG));
    let adds = sink.named("admin.allowlist.add");
    let removes = sink.named("admin.allowlist.remove");
    assert_eq!((adds.len(), removes.len()), (2, 1));
    assert_eq!(adds[0].get_attr("cidr"), Some("203.0.113.0/24"));
    assert_eq!(adds[0].get_attr("for"), None);
    assert_eq!(adds[1].get_attr("for"), Some("10m"));
    assert_eq!(removes[0].get_attr("cidr"), Some("203.0.113.0/24"));
    for e in adds.iter().chain(&removes) {
        assert_eq!(e.get_attr("operator"), Some(&*token_fingerprint(TOKEN)));
        assert_eq!(e.get_attr("client"), Some(ADMIN_PEER));
    }
}

#[tokio::test]
async fn stored_events_are_filtered_by_name_entity_action_time_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let app = TestApp::with(|b| b.sink(tower_siem::sink::SqliteSink::new(&db)), |l| l);
    let siem = &app.siem;
    let t0 = app.clock.now_millis();
    for _ in 0..3 {
        siem.fire(
            Event::new("auth.failure")
                .user("alice")
                .ip("192.0.2.10".parse().unwrap()),
        );
    }
    app.clock.advance(Duration::from_secs(60));
    let t1 = app.clock.now_millis();
    siem.block(
        &tower_siem::engine::EntityKey::Ip("192.0.2.66".parse().unwrap()),
        Duration::from_secs(600),
    );
    for _ in 0..2 {
        siem.fire(Event::new("profile.view").ip("192.0.2.66".parse().unwrap()));
    }
    app.clock.advance(Duration::from_secs(60));
    siem.fire(Event::new("auth.success").user("bob"));
    assert!(siem.flush_async(LONG).await);

    // Without a store: a clear 501.
    let plain = siem.admin_router(TOKEN).unwrap();
    let (status, v) = api(&plain, "GET", "/api/events", None).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("no event store configured"),
        "{v}"
    );

    let router = siem.admin(TOKEN).events(&db).router().unwrap();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, all) = api(&router, "GET", "/api/events", None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    // Newest first.
    assert_eq!(names(&all)[0], "auth.success");
    assert_eq!(names(&all).last().unwrap(), "auth.failure");
    let (_, v) = api(&router, "GET", "/api/events?name=auth.failure", None).await;
    assert_eq!(names(&v), ["auth.failure"; 3]);
    // Each as the JSONL sink writes it: the native JSON, verdict included.
    assert_eq!(v["events"][0]["user"], "alice");
    assert!(v["events"][0]["verdict"]["action"].is_string(), "{v}");
    let (_, v) = api(&router, "GET", "/api/events?entity=ip:192.0.2.66", None).await;
    assert_eq!(names(&v), ["profile.view"; 2]);
    let (_, v) = api(&router, "GET", "/api/events?entity=user:bob", None).await;
    assert_eq!(names(&v), ["auth.success"]);
    let (_, v) = api(&router, "GET", "/api/events?action=block", None).await;
    assert_eq!(names(&v), ["profile.view"; 2]);
    let (_, v) = api(
        &router,
        "GET",
        "/api/events?action=allow&entity=user:alice",
        None,
    )
    .await;
    assert_eq!(names(&v).len(), 3);
    // A time range: milliseconds or RFC 3339; `until` is exclusive.
    let (_, v) = api(&router, "GET", &format!("/api/events?since={t1}"), None).await;
    assert_eq!(names(&v), ["auth.success", "profile.view", "profile.view"]);
    let until = jiff::Timestamp::from_millisecond(t1).unwrap();
    let (_, v) = api(
        &router,
        "GET",
        &format!("/api/events?since={t0}&until={until}"),
        None,
    )
    .await;
    assert_eq!(names(&v), ["auth.failure"; 3]);
    let (_, v) = api(&router, "GET", "/api/events?limit=2", None).await;
    assert_eq!(names(&v), ["auth.success", "profile.view"]);

    for bad in [
        "limit=0",
        "limit=1001",
        "limit=many",
        "since=yesterday",
        "action=maybe",
        "entity=session:abc",
        "entity=nonsense",
        "colour=red",
    ] {
        let (status, v) = api(&router, "GET", &format!("/api/events?{bad}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(v["error"].is_string());
    }

    // An entity's answer lists its recent events.
    let (status, v) = api(&router, "GET", "/api/entities/ip:192.0.2.66", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["state"], "blocked");
    assert_eq!(names(&v), ["profile.view"; 2]);
    let (_, v) = api(&plain, "GET", "/api/entities/ip:192.0.2.66", None).await;
    assert!(v.get("events").is_none(), "{v}");
}

#[tokio::test]
async fn the_feed_carries_new_events_redacted_and_filtered() {
    let sink = Arc::new(Collect::default());
    let app = TestApp::with(|b| b.sink(sink.clone()), |l| l);
    let router = app.siem.admin_router(TOKEN).unwrap();

    let res = open_feed(&router, "/api/feed").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let mut all = res.into_body();
    let res = open_feed(&router, "/api/feed?name=auth.failure&entity=user:alice").await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut failures = res.into_body();

    // Secrets planted in a request and in an event.
    let mut req = common::req(
        "GET",
        "/search?q=shoes&password=hunter2secret",
        "192.0.2.44",
    )
    .header("authorization", "Bearer hunter2secret")
    .header("cookie", "sid=hunter2secret")
    .body(Body::empty())
    .unwrap();
    req.headers_mut()
        .insert("x-api-key", "hunter2secret".parse().unwrap());
    assert_eq!(app.send(req).await.status(), StatusCode::OK);
    app.siem.fire(
        Event::new("auth.failure")
            .user("alice")
            .attr("password", "hunter2secret"),
    );
    app.siem.fire(Event::new("auth.failure").user("bob"));

    let mut seen = String::new();
    read_feed(&mut all, &mut seen, |s| {
        s.contains("\"http.request\"") && s.matches("\"auth.failure\"").count() == 2
    })
    .await;
    assert!(!seen.contains("hunter2secret"), "{seen}");
    assert!(seen.contains("event: siem\ndata: {"), "{seen}");
    for line in seen.lines().filter(|l| l.starts_with("data: ")) {
        let v: serde_json::Value = serde_json::from_str(&line["data: ".len()..]).unwrap();
        assert!(v["name"].is_string());
    }

    let mut seen = String::new();
    app.siem.fire(Event::new("auth.failure").user("alice"));
    read_feed(&mut failures, &mut seen, |s| {
        s.matches("event: siem").count() >= 2
    })
    .await;
    assert!(!seen.contains("hunter2secret"), "{seen}");
    assert!(
        !seen.contains("bob") && !seen.contains("http.request"),
        "{seen}"
    );

    // The sinks got the same redacted event.
    assert!(app.siem.flush_async(LONG).await);
    let stored = sink.named("auth.failure");
    assert_ne!(stored[0].get_attr("password"), Some("hunter2secret"));

    // A subscriber that falls behind skips events and is told how many.
    for i in 0..(tower_siem::pipeline::FEED_CAPACITY + 100) {
        app.siem
            .fire(Event::new("auth.failure").user(format!("u{i}")));
    }
    let mut seen = String::new();
    read_feed(&mut all, &mut seen, |s| s.contains("event: lagged")).await;
    assert!(
        seen.contains("event: lagged\ndata: {\"skipped\":"),
        "{seen}"
    );
}

#[tokio::test]
async fn feed_subscribers_are_capped_and_a_feed_needs_sinks() {
    let sink = Arc::new(Collect::default());
    let siem = Siem::builder().sink(sink).build().unwrap();
    let router = siem.admin_router(TOKEN).unwrap();
    let mut open = Vec::new();
    for _ in 0..MAX_FEED_SUBSCRIBERS {
        let res = open_feed(&router, "/api/feed").await;
        assert_eq!(res.status(), StatusCode::OK);
        open.push(res);
    }
    let res = open_feed(&router, "/api/feed").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_str(&body_text(res).await).unwrap();
    assert!(v["error"].as_str().unwrap().contains("subscribers"), "{v}");
    // A closed feed frees its place.
    open.pop();
    let res = open_feed(&router, "/api/feed").await;
    assert_eq!(res.status(), StatusCode::OK);
    // Bad filters are refused before subscribing.
    drop(open);
    let (status, _) = api(&router, "GET", "/api/feed?action=sometimes", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Without sinks nothing is recorded, so there is nothing to feed.
    let bare = Siem::builder().build().unwrap();
    let (status, v) = api(&bare.admin_router(TOKEN).unwrap(), "GET", "/api/feed", None).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert!(v["error"].is_string());
}
