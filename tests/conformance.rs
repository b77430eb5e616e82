//! One suite, every sink: what an application may rely on whichever sink it picks.
//!
//! Each sink gets a [`Harness`] (make a fresh, empty destination; read back what it stored) and
//! one `conformance!` line. The checks:
//! - a batch written is read back with the same ids and every field equal;
//! - a batch written twice (a pipeline retry) is stored once by sinks that promise
//!   idempotence, and at least once by the others;
//! - secrets planted in real requests through the layer never appear in what the sink stored;
//! - flush succeeds and what was written is readable after it;
//! - an empty batch is fine and stores nothing.

mod common;
mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use common::{req, TestApp};
use serde_json::Value;
use tower_siem::event::{HttpInfo, SharedEvent};
use tower_siem::sink::{JsonlSink, Sink};
use tower_siem::{Action, Event, Verdict};

/// A fresh destination for one sink, and a way to read back what it stored.
#[allow(async_fn_in_trait)]
trait Harness: Sized {
    type Sink: Sink + Clone;
    /// Whether a batch written twice is stored once.
    const IDEMPOTENT: bool;
    /// A sink writing to a new, empty destination (a unique file, table or stream).
    async fn new() -> Self;
    fn sink(&self) -> Self::Sink;
    /// Every stored event, as JSON, in any order.
    async fn events(&self) -> Vec<Value>;
    /// Everything stored, as text: what a secret must never be part of.
    async fn raw(&self) -> String;
    /// Removes the destination.
    async fn cleanup(self);
}

macro_rules! conformance {
    ($module:ident, $harness:ty $(, #[$meta:meta])*) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn a_batch_reads_back_with_the_same_ids_and_fields() {
                round_trip::<$harness>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn a_retried_batch_is_not_duplicated_by_idempotent_sinks() {
                retried_batch::<$harness>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn secrets_in_requests_never_reach_the_store() {
                secrets::<$harness>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn flush_makes_writes_readable() {
                flush::<$harness>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn an_empty_batch_is_fine() {
                empty_batch::<$harness>().await;
            }
        }
    };
}

conformance!(jsonl, JsonlHarness);
#[cfg(feature = "postgres")]
conformance!(postgres, pg::PgHarness, #[ignore = "needs PostgreSQL: set TOWER_SIEM_TEST_POSTGRES"]);
#[cfg(feature = "nats")]
conformance!(nats, js::NatsHarness, #[ignore = "needs NATS: set TOWER_SIEM_TEST_NATS"]);
#[cfg(feature = "sqlite")]
conformance!(sqlite, lite::SqliteHarness);
#[cfg(feature = "webhook")]
conformance!(webhook, hook::WebhookHarness);

/// Events with every part filled in somewhere: HTTP details, a verdict, IPv6, odd text.
fn varied_batch() -> Vec<SharedEvent> {
    let mut request = Event::new("http.request")
        .ip("198.51.100.23".parse().unwrap())
        .session("3f1a9c0e5b7d2a4c6e8f0a1b2c3d4e5f")
        .device("0a1b2c3d4e5f60718293a4b5c6d7e8f9")
        .user_agent("Mozilla/5.0 (X11; Linux x86_64)");
    request.http = Some(HttpInfo {
        method: "GET".into(),
        route: Some("/products/{id}".into()),
        path: "/products/42".into(),
        query: Some("q=shoes&password=[REDACTED]".into()),
        status: Some(200),
        latency_us: Some(1234),
        bytes: Some(512),
        request_id: Some("req-7".into()),
        headers: vec![("accept-language".into(), "de-CH".into())],
    });
    request.verdict = Some(Verdict {
        action: Action::Block,
        score: 97.25,
        reasons: vec!["sqli".into(), "scanner-ua".into()],
        retry_after_secs: Some(600),
    });
    vec![
        Arc::new(request),
        Arc::new(
            Event::new("auth.failure")
                .user("alice")
                .ip("2001:db8::1".parse().unwrap())
                .attr("reason", "bad_password"),
        ),
        Arc::new(
            Event::new("billing.card_added")
                .user("Zoë 🦀")
                .attr("note", "quote \" backslash \\ tab \t line\u{2028}sep")
                .attr("empty", ""),
        ),
        Arc::new(Event::new("mfa.success").user("bob")),
    ]
}

fn by_id(events: Vec<Value>) -> HashMap<String, Vec<Value>> {
    let mut map: HashMap<String, Vec<Value>> = HashMap::new();
    for e in events {
        let id = e["id"]
            .as_str()
            .expect("every stored event has its id")
            .to_owned();
        map.entry(id).or_default().push(e);
    }
    map
}

async fn round_trip<H: Harness>() {
    let h = H::new().await;
    let sink = h.sink();
    let batch = varied_batch();
    sink.write(&batch).await.unwrap();
    sink.flush().await.unwrap();
    let stored = by_id(h.events().await);
    assert_eq!(stored.len(), batch.len(), "{stored:?}");
    for e in &batch {
        let copies = &stored[&e.id.to_string()];
        assert_eq!(copies.len(), 1);
        assert_eq!(
            copies[0],
            serde_json::to_value(&**e).unwrap(),
            "event {}",
            e.name
        );
        // And it is still an `Event` to whoever reads the store.
        let back: Event = serde_json::from_value(copies[0].clone()).unwrap();
        assert_eq!(back.id, e.id);
    }
    h.cleanup().await;
}

async fn retried_batch<H: Harness>() {
    let h = H::new().await;
    let sink = h.sink();
    let batch = varied_batch();
    sink.write(&batch).await.unwrap();
    // What the pipeline does after a write whose acknowledgement it never saw.
    sink.write(&batch).await.unwrap();
    sink.flush().await.unwrap();
    let stored = by_id(h.events().await);
    assert_eq!(stored.len(), batch.len(), "every event, none unknown");
    for e in &batch {
        let copies = stored[&e.id.to_string()].len();
        if H::IDEMPOTENT {
            assert_eq!(copies, 1, "{} stored {copies} times", e.id);
        } else {
            assert!(copies >= 1);
        }
    }
    h.cleanup().await;
}

const SECRETS: &[&str] = &[
    "SECRET-AUTH-1",
    "SECRET-COOKIE-2",
    "SECRET-PW-3",
    "SECRET-TOK-4",
    "SECRET-BODY-5",
    "SECRET-SID-6",
];

async fn secrets<H: Harness>() {
    let h = H::new().await;
    let app = TestApp::with(|b| b.sink(h.sink()), |l| l.session_cookie("sid"));
    let ip = "192.0.2.55";
    let res = app
        .send(
            req("GET", "/account?token=SECRET-TOK-4", ip)
                .header("authorization", "Bearer SECRET-AUTH-1")
                .header(
                    "cookie",
                    "theme=dark; sid=SECRET-SID-6; auth=SECRET-COOKIE-2",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app.get(ip, "/search?q=x&password=SECRET-PW-3").await;
    assert_eq!(res.status(), 200);
    let res = app.login(ip, "alice", "SECRET-BODY-5").await;
    assert_eq!(res.status(), 401);
    assert!(
        app.siem.flush(Duration::from_secs(30)),
        "the sink caught up"
    );
    let stats = app.siem.stats().pipeline.sinks[0].clone();
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");

    let events = h.events().await;
    // Three requests and the handler's `auth.failure`: the secrets had their chance.
    assert!(events.len() >= 4, "{events:?}");
    let raw = h.raw().await;
    assert!(raw.contains("/account"), "the scan reads what was stored");
    for secret in SECRETS {
        assert!(!raw.contains(secret), "{secret} reached the store");
    }
    h.cleanup().await;
}

async fn flush<H: Harness>() {
    let h = H::new().await;
    let sink = h.sink();
    sink.flush()
        .await
        .expect("flushing before any write is fine");
    let batch = varied_batch();
    sink.write(&batch[..2]).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(h.events().await.len(), 2);
    sink.write(&batch[2..]).await.unwrap();
    sink.flush().await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(h.events().await.len(), batch.len());
    h.cleanup().await;
}

async fn empty_batch<H: Harness>() {
    let h = H::new().await;
    let sink = h.sink();
    sink.write(&[]).await.unwrap();
    sink.flush().await.unwrap();
    assert!(h.events().await.is_empty());
    // And the sink still works afterwards.
    let batch = varied_batch();
    sink.write(&batch[..1]).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(h.events().await.len(), 1);
    h.cleanup().await;
}

struct JsonlHarness {
    _dir: tempfile::TempDir,
    path: PathBuf,
    sink: JsonlSink,
}

impl Harness for JsonlHarness {
    type Sink = JsonlSink;
    // A whole-batch retry appends again; only a partly written batch is resumed.
    const IDEMPOTENT: bool = false;

    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        JsonlHarness {
            sink: JsonlSink::new(&path),
            _dir: dir,
            path,
        }
    }

    fn sink(&self) -> JsonlSink {
        self.sink.clone()
    }

    async fn events(&self) -> Vec<Value> {
        self.raw()
            .await
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    async fn raw(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    async fn cleanup(self) {}
}

#[cfg(feature = "postgres")]
mod pg {
    use super::support::services::pg;
    use super::*;
    use tower_siem::sink::PostgresSink;

    pub struct PgHarness {
        client: tokio_postgres::Client,
        table: String,
        sink: PostgresSink,
    }

    impl Harness for PgHarness {
        type Sink = PostgresSink;
        const IDEMPOTENT: bool = true;

        async fn new() -> Self {
            let table = pg::table();
            PgHarness {
                client: pg::client().await,
                sink: PostgresSink::new(&pg::url())
                    .unwrap()
                    .table(&table)
                    .unwrap(),
                table,
            }
        }

        fn sink(&self) -> PostgresSink {
            self.sink.clone()
        }

        async fn events(&self) -> Vec<Value> {
            // Nothing written yet: the sink has not created its table.
            let sql = format!("SELECT event FROM \"{}\"", self.table);
            match self.client.query(&sql, &[]).await {
                Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                    Vec::new()
                }
                Err(e) => panic!("{e}"),
            }
        }

        async fn raw(&self) -> String {
            // Every column of every row, as PostgreSQL prints it.
            let sql = format!("SELECT t::text FROM \"{}\" t", self.table);
            let rows = self.client.query(&sql, &[]).await.unwrap();
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }

        async fn cleanup(self) {
            pg::drop_table(&self.client, &self.table).await;
        }
    }
}

#[cfg(feature = "nats")]
mod js {
    use super::support::services::nats;
    use super::*;
    use tower_siem::sink::NatsSink;

    pub struct NatsHarness {
        context: async_nats::jetstream::Context,
        stream: String,
        sink: NatsSink,
    }

    impl Harness for NatsHarness {
        type Sink = NatsSink;
        const IDEMPOTENT: bool = true;

        async fn new() -> Self {
            let (stream, prefix) = nats::names();
            NatsHarness {
                context: nats::context().await,
                sink: NatsSink::new(nats::url())
                    .unwrap()
                    .stream(&stream)
                    .unwrap()
                    .subject_prefix(prefix)
                    .unwrap(),
                stream,
            }
        }

        fn sink(&self) -> NatsSink {
            self.sink.clone()
        }

        async fn events(&self) -> Vec<Value> {
            if self.context.get_stream(&self.stream).await.is_err() {
                // Nothing written yet: the sink has not created its stream.
                return Vec::new();
            }
            nats::messages(&self.context, &self.stream)
                .await
                .iter()
                .map(|m| serde_json::from_slice(&m.payload).unwrap())
                .collect()
        }

        async fn raw(&self) -> String {
            let mut out = String::new();
            for m in nats::messages(&self.context, &self.stream).await {
                out.push_str(m.subject.as_str());
                out.push_str(&format!(" {:?} ", m.headers));
                out.push_str(&String::from_utf8_lossy(&m.payload));
                out.push('\n');
            }
            out
        }

        async fn cleanup(self) {
            nats::delete(&self.context, &self.stream).await;
        }
    }
}

#[cfg(feature = "sqlite")]
mod lite {
    use super::*;
    use tower_siem::sink::sqlite::{EventQuery, SqliteStore};
    use tower_siem::sink::SqliteSink;

    pub struct SqliteHarness {
        _dir: tempfile::TempDir,
        path: PathBuf,
        sink: SqliteSink,
    }

    impl Harness for SqliteHarness {
        type Sink = SqliteSink;
        // Inserts are keyed by the event id.
        const IDEMPOTENT: bool = true;

        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("events.db");
            SqliteHarness {
                // The test clock is fixed: age-based retention would one day delete its events.
                sink: SqliteSink::new(&path).with_unbounded_retention(),
                _dir: dir,
                path,
            }
        }

        fn sink(&self) -> SqliteSink {
            self.sink.clone()
        }

        async fn events(&self) -> Vec<Value> {
            if !self.path.exists() {
                return Vec::new();
            }
            let store = SqliteStore::open(&self.path).unwrap();
            store
                .events(&EventQuery::new().limit(100_000))
                .unwrap()
                .iter()
                .map(|e| serde_json::to_value(e).unwrap())
                .collect()
        }

        async fn raw(&self) -> String {
            if !self.path.exists() {
                return String::new();
            }
            // Every column of every row, as text (blobs lossily).
            let conn = rusqlite::Connection::open(&self.path).unwrap();
            let mut stmt = conn.prepare("SELECT * FROM events").unwrap();
            let n = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            let mut out = String::new();
            while let Some(row) = rows.next().unwrap() {
                for i in 0..n {
                    match row.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            out.push_str(&String::from_utf8_lossy(t));
                        }
                        rusqlite::types::ValueRef::Integer(v) => out.push_str(&v.to_string()),
                        rusqlite::types::ValueRef::Real(v) => out.push_str(&v.to_string()),
                        rusqlite::types::ValueRef::Null => {}
                    }
                    out.push('\t');
                }
                out.push('\n');
            }
            out
        }

        async fn cleanup(self) {}
    }
}

#[cfg(feature = "webhook")]
mod hook {
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::routing::post;
    use axum::Router;
    use bytes::Bytes;

    use super::*;
    use tower_siem::sink::WebhookSink;

    /// A real HTTP receiver on 127.0.0.1:0 that keeps every body it is sent.
    pub struct WebhookHarness {
        bodies: Arc<Mutex<Vec<Bytes>>>,
        sink: WebhookSink,
        server: tokio::task::JoinHandle<()>,
    }

    impl Harness for WebhookHarness {
        type Sink = WebhookSink;
        // A retried POST is posted again: the receiver de-duplicates by event id if it must.
        const IDEMPOTENT: bool = false;

        async fn new() -> Self {
            let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
            let app = Router::new()
                .route(
                    "/hook",
                    post(
                        |State(b): State<Arc<Mutex<Vec<Bytes>>>>, body: Bytes| async move {
                            b.lock().unwrap().push(body);
                        },
                    ),
                )
                .with_state(Arc::clone(&bodies));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            let sink = WebhookSink::new(&format!("http://{addr}/hook"))
                .unwrap()
                .all_events();
            WebhookHarness {
                bodies,
                sink,
                server,
            }
        }

        fn sink(&self) -> WebhookSink {
            self.sink.clone()
        }

        async fn events(&self) -> Vec<Value> {
            let bodies = self.bodies.lock().unwrap().clone();
            bodies
                .iter()
                .flat_map(|b| {
                    let v: Value = serde_json::from_slice(b).unwrap();
                    v.as_array().cloned().unwrap_or_default()
                })
                .collect()
        }

        async fn raw(&self) -> String {
            let bodies = self.bodies.lock().unwrap().clone();
            bodies
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect()
        }

        async fn cleanup(self) {
            self.server.abort();
        }
    }
}
