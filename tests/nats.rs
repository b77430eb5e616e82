//! The NATS JetStream sink against the real server: subjects, message ids, exactly-once
//! delivery when acknowledgements are lost or the server is unreachable for a while.
#![cfg(feature = "nats")]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::proxy::Proxy;
use support::services::{self, nats};
use tower_siem::event::SharedEvent;
use tower_siem::format::Format;
use tower_siem::pipeline::Pipeline;
use tower_siem::sink::{NatsSink, Sink, SinkErrorKind};
use tower_siem::Event;

fn events(n: usize) -> Vec<SharedEvent> {
    (0..n)
        .map(|i| {
            Arc::new(
                Event::new(if i % 2 == 0 {
                    "auth.failure"
                } else {
                    "http.request"
                })
                .user(format!("user{i}"))
                .ip([203, 0, 113, (i % 250) as u8].into())
                .attr("i", i.to_string()),
            )
        })
        .collect()
}

fn sink(url: &str, stream: &str, prefix: &str) -> NatsSink {
    NatsSink::new(url)
        .unwrap()
        .stream(stream)
        .unwrap()
        .subject_prefix(prefix)
        .unwrap()
        .ack_timeout(Duration::from_secs(3))
}

fn ids_of(messages: &[async_nats::jetstream::message::StreamMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            m.headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .expect("every message carries Nats-Msg-Id")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS: set TOWER_SIEM_TEST_NATS"]
async fn events_land_on_their_subjects_with_their_ids() {
    let js = nats::context().await;
    let (stream, prefix) = nats::names();
    let sink = sink(&nats::url(), &stream, &prefix);
    let mut batch = events(4);
    batch.push(Arc::new(Event::new("odd name.*.>").attr("k", "v")));
    sink.write(&batch).await.unwrap();

    let stored = nats::messages(&js, &stream).await;
    assert_eq!(stored.len(), batch.len());
    for (m, e) in stored.iter().zip(&batch) {
        assert_eq!(m.subject.as_str(), sink.subject_for(e.name.as_str()));
        assert_eq!(
            m.headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .unwrap()
                .to_string(),
            e.id.to_string()
        );
        let back: Event = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(&back, &**e);
    }
    assert_eq!(stored[0].subject.as_str(), format!("{prefix}.auth.failure"));
    assert_eq!(stored[4].subject.as_str(), format!("{prefix}.odd_name._._"));

    // The stream the sink created captures the prefix and de-duplicates.
    let mut s = js.get_stream(&stream).await.unwrap();
    let info = s.info().await.unwrap();
    assert_eq!(info.config.subjects, vec![format!("{prefix}.>")]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    nats::delete(&js, &stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS: set TOWER_SIEM_TEST_NATS"]
async fn a_batch_retried_after_lost_acks_is_stored_once() {
    let js = nats::context().await;
    let (stream, prefix) = nats::names();
    let proxy = Proxy::start(nats::addr()).await;
    let sink = sink(&format!("nats://{}", proxy.addr()), &stream, &prefix);
    let warm = events(1);
    sink.write(&warm).await.unwrap();

    let batch = events(200);
    proxy.cut_next_reply();
    let err = sink
        .write(&batch)
        .await
        .expect_err("the acknowledgements were swallowed");
    assert_eq!(err.kind(), SinkErrorKind::Unavailable);
    assert_eq!(proxy.cuts(), 1);
    let landed = nats::count(&js, &stream).await;
    assert!(
        landed > 1,
        "part of the batch reached the stream before the cut ({landed})"
    );

    // The pipeline's retry: the same batch again, over a fresh connection.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match sink.write(&batch).await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => eprintln!("retrying: {e}"),
            Err(e) => panic!("the retry never succeeded: {e}"),
        }
    }
    let stored = nats::messages(&js, &stream).await;
    let ids = ids_of(&stored);
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(stored.len(), 201, "every event exactly once");
    assert_eq!(distinct.len(), 201);
    for e in warm.iter().chain(&batch) {
        assert!(distinct.contains(&e.id.to_string()));
    }
    nats::delete(&js, &stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS: set TOWER_SIEM_TEST_NATS"]
async fn the_pipeline_delivers_exactly_once_across_an_outage_and_a_lost_ack() {
    let js = nats::context().await;
    let (stream, prefix) = nats::names();
    let proxy = Proxy::start(nats::addr()).await;
    let sink = sink(&format!("nats://{}", proxy.addr()), &stream, &prefix)
        .connect_timeout(Duration::from_secs(1));
    sink.connect().await.unwrap();

    proxy.refuse(true);
    let pipeline = Pipeline::new(vec![Box::new(sink)], services::patient());
    let mut ids = HashSet::new();
    for i in 0..1_000 {
        let e = Event::new("auth.failure").attr("i", i.to_string());
        ids.insert(e.id.to_string());
        pipeline.emit(e);
    }
    // Wait (bounded) until the outage has actually failed some writes.
    let deadline = Instant::now() + Duration::from_secs(20);
    while pipeline.stats().sinks[0].write_errors < 2 {
        assert!(
            Instant::now() < deadline,
            "writes never failed during the outage"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Back up, and the first batch after recovery loses its acknowledgements.
    proxy.cut_next_reply();
    proxy.refuse(false);
    assert!(pipeline.flush_async(Duration::from_secs(60)).await);

    let stats = pipeline.stats().sinks[0].clone();
    assert_eq!(stats.emitted, 1_000);
    assert_eq!(stats.delivered, 1_000, "{stats:?}");
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    assert!(stats.retries > 0);
    assert_eq!(proxy.cuts(), 1, "the lost-ack case really happened");

    let stored = nats::messages(&js, &stream).await;
    let got = ids_of(&stored);
    let distinct: HashSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), 1_000, "no duplicates");
    assert_eq!(distinct, ids, "every emitted event");
    pipeline.shutdown(Duration::from_secs(5));
    nats::delete(&js, &stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS: set TOWER_SIEM_TEST_NATS"]
async fn without_stream_creation_a_missing_stream_is_an_error() {
    let js = nats::context().await;
    let (stream, prefix) = nats::names();
    let sink = sink(&nats::url(), &stream, &prefix).create_stream(false);
    let err = sink.write(&events(3)).await.unwrap_err();
    assert_eq!(err.kind(), SinkErrorKind::Unavailable);
    assert!(js.get_stream(&stream).await.is_err(), "nothing was created");

    // An operator creates the stream; the next attempt goes through.
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{prefix}.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    sink.write(&events(3)).await.unwrap();
    assert_eq!(nats::count(&js, &stream).await, 3);
    nats::delete(&js, &stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS: set TOWER_SIEM_TEST_NATS"]
async fn ecs_and_ocsf_bodies_keep_subjects_and_ids() {
    let js = nats::context().await;
    for format in [Format::Ecs, Format::Ocsf] {
        let (stream, prefix) = nats::names();
        let sink = sink(&nats::url(), &stream, &prefix).format(format);
        let batch = events(3);
        sink.write(&batch).await.unwrap();
        let stored = nats::messages(&js, &stream).await;
        assert_eq!(stored.len(), 3);
        for (m, e) in stored.iter().zip(&batch) {
            let body: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            assert_eq!(body, format.to_json(e), "{format}");
            assert_eq!(m.subject.as_str(), sink.subject_for(e.name.as_str()));
            assert_eq!(
                m.headers
                    .get(async_nats::header::NATS_MESSAGE_ID)
                    .unwrap()
                    .to_string(),
                e.id.to_string()
            );
        }
        nats::delete(&js, &stream).await;
    }
}

#[tokio::test]
async fn an_unreachable_server_is_an_unavailable_error() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = NatsSink::new(format!("nats://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_millis(500));
    let err = sink.write(&events(1)).await.unwrap_err();
    assert_eq!(err.kind(), SinkErrorKind::Unavailable);
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    // An empty batch needs no server.
    sink.write(&[]).await.unwrap();
}
