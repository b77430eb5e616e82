//! The webhook alert sink against a real HTTP receiver on 127.0.0.1: alerts (not every event),
//! Slack bodies, retries, refusals, timeouts, and no secrets on the wire.
#![cfg(feature = "webhook")]

mod common;

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tower_siem::pipeline::{PipelineConfig, RetryPolicy, SinkStats, SpoolConfig};
use tower_siem::sink::WebhookSink;
use tower_siem::{Event, Siem};

const LONG: Duration = Duration::from_secs(20);

/// What the receiver does with the next request.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Sleep(Duration),
}

#[derive(Clone, Default)]
struct Receiver {
    /// Every request: its headers and body, in arrival order (also those answered with errors).
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    /// Scripted answers; `200` once they run out.
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// The status answered to each request, in the same order as `seen`.
    statuses: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    fn bodies(&self) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).expect("a JSON body"))
            .collect()
    }

    fn raw(&self) -> String {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// Events of all requests answered `200`, in order.
    fn accepted_events(&self) -> Vec<Value> {
        let statuses = self.statuses.lock().unwrap().clone();
        self.bodies()
            .into_iter()
            .zip(statuses)
            .filter(|(_, s)| *s == 200)
            .flat_map(|(b, _)| b.as_array().cloned().unwrap_or_default())
            .collect()
    }
}

async fn hook(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> (StatusCode, Body) {
    let answer = rx.script.lock().unwrap().pop_front();
    let status = match answer {
        Some(Answer::Status(s)) => s,
        Some(Answer::Sleep(d)) => {
            tokio::time::sleep(d).await;
            200
        }
        None => 200,
    };
    let mut seen = rx.seen.lock().unwrap();
    seen.push((headers, body));
    rx.statuses.lock().unwrap().push(status);
    drop(seen);
    (StatusCode::from_u16(status).unwrap(), Body::empty())
}

async fn receiver(script: impl IntoIterator<Item = Answer>) -> (Receiver, SocketAddr) {
    let rx = Receiver::default();
    rx.script.lock().unwrap().extend(script);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (rx, addr)
}

fn fast_retry(max_retries: u32) -> PipelineConfig {
    PipelineConfig {
        retry: RetryPolicy {
            max_retries,
            base: Duration::from_millis(1),
            max: Duration::from_millis(10),
        },
        ..PipelineConfig::default()
    }
}

fn webhook(siem: &Siem) -> SinkStats {
    siem.stats().pipeline.sink("webhook").cloned().unwrap()
}

/// Six failed logins for one user: the default rules step the account up, once.
fn brute_force(siem: &Siem, user: &str) {
    for _ in 0..6 {
        siem.fire(Event::new("auth.failure").user(user));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_not_events_reach_the_webhook() {
    let (rx, addr) = receiver([]).await;
    let sink = WebhookSink::new(&format!("http://{addr}/hook"))
        .unwrap()
        .header("authorization", "Bearer receiver-token")
        .unwrap();
    let siem = Siem::builder()
        .sink(sink)
        .pipeline(fast_retry(2))
        .build()
        .unwrap();
    brute_force(&siem, "alice");
    // More failures: the account stays stepped up (users are never blocked), so no new alert.
    brute_force(&siem, "alice");
    assert!(siem.flush_async(LONG).await);

    let events = rx.accepted_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let alert = &events[0];
    assert_eq!(alert["name"], "siem.alert");
    assert_eq!(alert["user"], "alice");
    let attrs: Vec<(String, String)> = serde_json::from_value(alert["attrs"].clone()).unwrap();
    let attr = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    assert_eq!(attr("entity"), Some("user:alice"));
    assert_eq!(attr("previous_action"), Some("allow"));
    assert_eq!(attr("action"), Some("step_up"));
    assert_eq!(attr("rules"), Some("auth.bruteforce.user"));
    assert_eq!(alert["verdict"]["action"], "step_up");
    // The receiver's own credential arrives; the content type is JSON.
    let seen = rx.seen.lock().unwrap();
    assert_eq!(seen[0].0["authorization"], "Bearer receiver-token");
    assert_eq!(seen[0].0["content-type"], "application/json");
    drop(seen);

    // Twelve events went through the SIEM; the webhook counts only the one it takes.
    let s = webhook(&siem);
    assert_eq!((s.emitted, s.delivered, s.buffered), (1, 1, 0));
    assert_eq!(s.dropped.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_bodies_are_one_escaped_line_per_alert() {
    let (rx, addr) = receiver([]).await;
    let sink = WebhookSink::new(&format!("http://{addr}/hook"))
        .unwrap()
        .slack();
    let siem = Siem::builder()
        .sink(sink)
        .pipeline(fast_retry(2))
        .build()
        .unwrap();
    brute_force(&siem, "<http://evil.example|click here>");
    assert!(siem.flush_async(LONG).await);
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 1);
    let text = bodies[0]["text"].as_str().expect("a Slack text body");
    assert_eq!(
        text,
        "tower-siem: user:&lt;http://evil.example|click here&gt; allow → *step_up* \
         (score 40.0; rules: auth.bruteforce.user)"
    );
    assert_eq!(bodies[0].as_object().unwrap().len(), 1, "only `text`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_posts_are_retried_until_the_receiver_answers() {
    let (rx, addr) = receiver([Answer::Status(503), Answer::Status(429)]).await;
    let sink = WebhookSink::new(&format!("http://{addr}/hook")).unwrap();
    let siem = Siem::builder()
        .sink(sink)
        .pipeline(fast_retry(5))
        .build()
        .unwrap();
    brute_force(&siem, "alice");
    assert!(siem.flush_async(LONG).await);

    // The same alert three times on the wire; accepted once.
    let ids: Vec<String> = rx
        .bodies()
        .iter()
        .map(|b| b[0]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1);
    assert_eq!(rx.accepted_events().len(), 1);
    let s = webhook(&siem);
    assert_eq!(
        (s.emitted, s.delivered, s.retries, s.write_errors),
        (1, 1, 2, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_payload_is_given_up_even_with_a_spool() {
    let dir = tempfile::tempdir().unwrap();
    let (rx, addr) = receiver([Answer::Status(400); 3]).await;
    let sink = WebhookSink::new(&format!("http://{addr}/hook")).unwrap();
    let siem = Siem::builder()
        .sink(sink)
        .pipeline(PipelineConfig {
            spool: Some(SpoolConfig::new(dir.path())),
            ..fast_retry(2)
        })
        .build()
        .unwrap();
    brute_force(&siem, "alice");
    assert!(siem.flush_async(LONG).await);
    let s = webhook(&siem);
    // First attempt and two retries, all refused: dropped and counted, not retried forever.
    assert_eq!((s.emitted, s.delivered, s.dropped.sink_error), (1, 0, 1));
    assert_eq!(s.write_errors, 3);
    // And the spool is not blocked behind it.
    brute_force(&siem, "bob");
    assert!(siem.flush_async(LONG).await);
    let s = webhook(&siem);
    assert_eq!((s.emitted, s.delivered, s.buffered), (2, 1, 0));
    assert_eq!(rx.accepted_events()[0]["user"], "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_times_out_and_is_counted() {
    let (_rx, addr) = receiver([Answer::Sleep(Duration::from_secs(3))]).await;
    let sink = WebhookSink::new(&format!("http://{addr}/hook"))
        .unwrap()
        .timeout(Duration::from_millis(200));
    let siem = Siem::builder()
        .sink(sink)
        .pipeline(fast_retry(0))
        .build()
        .unwrap();
    brute_force(&siem, "alice");
    assert!(siem.flush_async(LONG).await);
    let s = webhook(&siem);
    assert_eq!(
        (s.emitted, s.delivered, s.dropped.sink_error, s.write_errors),
        (1, 0, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_events_mode_never_posts_secrets() {
    let (rx, addr) = receiver([]).await;
    let url = format!("http://{addr}/hook");
    let app = common::TestApp::with(
        |b| b.sink(WebhookSink::new(&url).unwrap().all_events()),
        |l| l,
    );
    let req = common::req(
        "GET",
        "/search?q=shoes&password=hunter2&token=tok-123",
        "203.0.113.7",
    )
    .header("authorization", "Bearer topsecret-bearer")
    .header("cookie", "sid=cookie-secret-value")
    .body(Body::empty())
    .unwrap();
    assert_eq!(app.send(req).await.status(), StatusCode::OK);
    app.login("203.0.113.7", "alice", "not-wonderland-secret")
        .await;
    assert!(app.siem.flush_async(LONG).await);

    let events = rx.accepted_events();
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"http.request"), "{names:?}");
    assert!(names.contains(&"auth.failure"), "{names:?}");
    let raw = rx.raw();
    for secret in [
        "hunter2",
        "tok-123",
        "topsecret-bearer",
        "cookie-secret-value",
        "not-wonderland-secret",
    ] {
        assert!(!raw.contains(secret), "{secret} reached the webhook: {raw}");
    }
    let s = webhook(&app.siem);
    assert_eq!(s.emitted, s.delivered);
    assert_eq!(s.emitted as usize, events.len());
}
