//! The PostgreSQL sink against the real server: columns, schema, exactly-once delivery when a
//! reply is lost or the server is unreachable for a while.
#![cfg(feature = "postgres")]

mod support;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::proxy::Proxy;
use support::services::{self, pg};
use tower_siem::event::{HttpInfo, SharedEvent};
use tower_siem::pipeline::Pipeline;
use tower_siem::sink::{PostgresSink, Sink, SinkErrorKind};
use tower_siem::{Action, Event, Verdict};

fn events(n: usize) -> Vec<SharedEvent> {
    (0..n)
        .map(|i| {
            Arc::new(
                Event::new("auth.failure")
                    .user(format!("user{i}"))
                    .ip([203, 0, 113, (i % 250) as u8].into())
                    .attr("i", i.to_string()),
            )
        })
        .collect()
}

fn sink(url: &str, table: &str) -> PostgresSink {
    PostgresSink::new(url)
        .unwrap()
        .table(table)
        .unwrap()
        .timeout(Duration::from_secs(5))
}

async fn ids(client: &tokio_postgres::Client, table: &str) -> Vec<uuid::Uuid> {
    client
        .query(&format!("SELECT id FROM \"{table}\""), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set TOWER_SIEM_TEST_POSTGRES"]
async fn a_batch_lands_in_typed_columns_and_whole_as_jsonb() {
    let client = pg::client().await;
    let table = pg::table();
    let sink = sink(&pg::url(), &table);

    let mut request = Event::new("http.request")
        .ip("2001:db8::7".parse().unwrap())
        .user_agent("curl/8")
        .attr("k", "first")
        .attr("k", "second");
    request.http = Some(HttpInfo {
        method: "POST".into(),
        route: Some("/login".into()),
        path: "/login".into(),
        status: Some(401),
        ..HttpInfo::default()
    });
    request.verdict = Some(Verdict {
        action: Action::StepUp,
        score: 42.5,
        reasons: vec!["login-bruteforce-ip".into()],
        retry_after_secs: None,
    });
    let nul = Event::new("app.note").user("a\0b").attr("note", "x\0y");
    let batch: Vec<SharedEvent> = vec![Arc::new(request), Arc::new(nul)];
    sink.write(&batch).await.unwrap();

    let row = client
        .query_one(
            &format!(
                "SELECT id, name, ip, user_name, user_agent, method, path, route, status, \
                 action, score, attrs, event, time FROM \"{table}\" WHERE name = 'http.request'"
            ),
            &[],
        )
        .await
        .unwrap();
    let e = &batch[0];
    assert_eq!(row.get::<_, uuid::Uuid>("id"), e.id);
    assert_eq!(
        row.get::<_, IpAddr>("ip"),
        "2001:db8::7".parse::<IpAddr>().unwrap()
    );
    assert_eq!(row.get::<_, Option<String>>("user_name"), None);
    assert_eq!(row.get::<_, &str>("user_agent"), "curl/8");
    assert_eq!(row.get::<_, &str>("method"), "POST");
    assert_eq!(row.get::<_, &str>("route"), "/login");
    assert_eq!(row.get::<_, i32>("status"), 401);
    assert_eq!(row.get::<_, &str>("action"), "step_up");
    assert_eq!(row.get::<_, f64>("score"), 42.5);
    // A repeated attribute keeps its last value in the object; the full event keeps both.
    assert_eq!(
        row.get::<_, serde_json::Value>("attrs"),
        serde_json::json!({"k": "second"})
    );
    let whole: serde_json::Value = row.get("event");
    assert_eq!(whole, serde_json::to_value(&**e).unwrap());
    let time: std::time::SystemTime = row.get("time");
    // PostgreSQL keeps microseconds; the `event` column keeps the exact time.
    assert_eq!(
        jiff::Timestamp::try_from(time).unwrap(),
        jiff::Timestamp::from_microsecond(e.time.as_microsecond()).unwrap()
    );

    // U+0000 cannot be stored; it becomes U+FFFD instead of failing the batch forever.
    let row = client
        .query_one(
            &format!("SELECT user_name, attrs FROM \"{table}\" WHERE name = 'app.note'"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>("user_name"), "a\u{FFFD}b");
    assert_eq!(
        row.get::<_, serde_json::Value>("attrs"),
        serde_json::json!({"note": "x\u{FFFD}y"})
    );
    pg::drop_table(&client, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set TOWER_SIEM_TEST_POSTGRES"]
async fn the_schema_is_created_indexed_versioned_and_checked() {
    let client = pg::client().await;
    let table = pg::table();
    let a = sink(&pg::url(), &table);
    let b = sink(&pg::url(), &table);
    // Two sinks (two replicas) migrating at once.
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    a.migrate().await.unwrap();

    let version: i32 = client
        .query_one(
            "SELECT version FROM tower_siem_schema WHERE table_name = $1",
            &[&table],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 1);
    let indexes: HashSet<String> = client
        .query(
            "SELECT indexname FROM pg_indexes WHERE tablename = $1",
            &[&table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for suffix in ["pkey", "time_idx", "ip_idx", "user_name_idx", "name_idx"] {
        assert!(
            indexes.contains(&format!("{table}_{suffix}")),
            "{suffix} in {indexes:?}"
        );
    }

    // A table written by a newer tower-siem is refused, not written to blindly.
    client
        .execute(
            "UPDATE tower_siem_schema SET version = 99 WHERE table_name = $1",
            &[&table],
        )
        .await
        .unwrap();
    let fresh = sink(&pg::url(), &table);
    let err = fresh.migrate().await.unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
    assert!(fresh.write(&events(1)).await.is_err());
    assert_eq!(pg::count(&client, &table).await, 0);
    pg::drop_table(&client, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set TOWER_SIEM_TEST_POSTGRES"]
async fn a_batch_retried_after_a_lost_reply_is_stored_once() {
    let client = pg::client().await;
    let table = pg::table();
    let proxy = Proxy::start(pg::addr()).await;
    let sink = sink(&pg::url_via(proxy.addr()), &table).pool_size(1);
    let warm = events(1);
    sink.write(&warm).await.unwrap();

    let batch = events(300);
    proxy.cut_next_reply();
    let err = sink
        .write(&batch)
        .await
        .expect_err("the reply was swallowed");
    assert_eq!(err.kind(), SinkErrorKind::Unavailable, "{err}");
    assert_eq!(proxy.cuts(), 1);
    assert_eq!(
        pg::count(&client, &table).await,
        301,
        "the insert committed before its reply was lost"
    );

    // The pipeline's retry: the same batch again, over a fresh connection.
    sink.write(&batch).await.unwrap();
    let stored = ids(&client, &table).await;
    assert_eq!(stored.len(), 301, "nothing twice");
    let stored: HashSet<uuid::Uuid> = stored.into_iter().collect();
    for e in warm.iter().chain(&batch) {
        assert!(stored.contains(&e.id));
    }
    assert!(proxy.accepted() >= 2, "the retry used a new connection");
    pg::drop_table(&client, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set TOWER_SIEM_TEST_POSTGRES"]
async fn the_pipeline_delivers_exactly_once_across_an_outage_and_a_lost_reply() {
    let client = pg::client().await;
    let table = pg::table();
    let proxy = Proxy::start(pg::addr()).await;
    let sink = sink(&pg::url_via(proxy.addr()), &table);
    sink.migrate().await.unwrap();

    proxy.refuse(true);
    let pipeline = Pipeline::new(vec![Box::new(sink)], services::patient());
    let mut emitted = HashSet::new();
    for i in 0..1_000 {
        let e = Event::new("auth.failure").attr("i", i.to_string());
        emitted.insert(e.id);
        pipeline.emit(e);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while pipeline.stats().sinks[0].write_errors < 2 {
        assert!(
            Instant::now() < deadline,
            "writes never failed during the outage"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(proxy.refused() > 0);
    proxy.cut_next_reply();
    proxy.refuse(false);
    assert!(pipeline.flush_async(Duration::from_secs(60)).await);

    let stats = pipeline.stats().sinks[0].clone();
    assert_eq!(stats.emitted, 1_000);
    assert_eq!(stats.delivered, 1_000, "{stats:?}");
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    assert_eq!(proxy.cuts(), 1, "the lost-reply case really happened");

    let stored = ids(&client, &table).await;
    assert_eq!(stored.len(), 1_000, "no duplicates");
    assert_eq!(stored.into_iter().collect::<HashSet<_>>(), emitted);
    pipeline.shutdown(Duration::from_secs(5));
    pg::drop_table(&client, &table).await;
}

#[tokio::test]
async fn an_unreachable_server_is_an_unavailable_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = PostgresSink::new(&format!("postgres://postgres@127.0.0.1:{port}/test"))
        .unwrap()
        .timeout(Duration::from_secs(2));
    let err = sink.write(&events(1)).await.unwrap_err();
    assert_eq!(err.kind(), SinkErrorKind::Unavailable, "{err}");
    // An empty batch needs no server.
    sink.write(&[]).await.unwrap();
}
