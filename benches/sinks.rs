//! Sustained delivery rate into PostgreSQL and NATS JetStream with the default pipeline
//! settings (batches of 512), against the real servers.
//!
//! ```text
//! TOWER_SIEM_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test \
//! TOWER_SIEM_TEST_NATS=nats://127.0.0.1:4222 \
//!     cargo bench --features postgres,nats --bench sinks
//! ```
//!
//! Each round emits `EVENTS` typical `http.request` events as fast as the pipeline takes them
//! (overflow policy `Wait`, so the queue applies back-pressure instead of dropping) and stops
//! the clock when every one is delivered, i.e. acknowledged by the server. Prints each round
//! and the median, with the CPU time this process spent per event.
//!
//! Two clients without the pipeline or the sink run beside the NATS sink, on the same server
//! at the same moment, as its ceiling: async-nats's JetStream publish (the sink's own path),
//! and async-nats's core publish with one wildcard subscription collecting the
//! acknowledgements (less client CPU per event). On a 2-core machine all three are bounded by
//! the server: one nats-server thread (the stream's) runs at 100 % of a core. A sink whose variable is unset is skipped with a note. Bounded: a round that
//! has not finished within a minute fails.

use std::time::{Duration, Instant};

use tower_siem::event::HttpInfo;
use tower_siem::pipeline::{Overflow, Pipeline, PipelineConfig};
use tower_siem::sink::{NatsSink, PostgresSink, Sink};
use tower_siem::{Action, Event, Verdict};

const ROUNDS: usize = 5;

fn event(i: u64) -> Event {
    let mut e = Event::new("http.request")
        .ip(std::net::Ipv4Addr::from(0xCB00_7100 | (i as u32 & 0xff)).into())
        .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36")
        .session("3f1a9c0e5b7d2a4c6e8f0a1b2c3d4e5f");
    e.http = Some(HttpInfo {
        method: "GET".into(),
        route: Some("/products/{id}".into()),
        path: format!("/products/{}", i % 1000),
        query: None,
        status: Some(200),
        latency_us: Some(850),
        bytes: Some(2048),
        request_id: Some(format!("req-{i}")),
        headers: Vec::new(),
    });
    e.verdict = Some(Verdict {
        action: Action::Allow,
        score: 0.0,
        reasons: Vec::new(),
        retry_after_secs: None,
    });
    e
}

#[path = "support/proc_cpu.rs"]
mod proc_cpu;
use proc_cpu::process_cpu;

/// One round's events per second, and this process's CPU time per event in µs.
type Rate = (f64, f64);

/// The [`Rate`] of `events` that took `elapsed` and `cpu`.
fn rate(events: u64, elapsed: Duration, cpu: Duration) -> Rate {
    (
        events as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / events as f64,
    )
}

/// Events per second for one round.
fn round(sink: Box<dyn Sink>, events: u64) -> Rate {
    let pipeline = Pipeline::new(
        vec![sink],
        PipelineConfig {
            overflow: Overflow::Wait(Duration::from_secs(60)),
            ..PipelineConfig::default()
        },
    );
    let start = Instant::now();
    let cpu = process_cpu();
    for i in 0..events {
        pipeline.emit(event(i));
    }
    assert!(
        pipeline.flush(Duration::from_secs(60)),
        "round not done in 60 s"
    );
    let elapsed = start.elapsed();
    let cpu = process_cpu().saturating_sub(cpu);
    let stats = pipeline.shutdown(Duration::from_secs(5)).sinks[0].clone();
    assert_eq!(stats.delivered, events, "{stats:?}");
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    rate(events, elapsed, cpu)
}

fn report(name: &str, events: u64, rates: Vec<Rate>) {
    for (i, (r, cpu)) in rates.iter().enumerate() {
        println!(
            "{name}: round {} of {ROUNDS}: {events} events, {r:.0} events/s, {cpu:.2} µs CPU per event in this process",
            i + 1
        );
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{name}: median {:.0} events/s, {:.2} µs CPU per event in this process",
        median(rates.iter().map(|r| r.0).collect()),
        median(rates.iter().map(|r| r.1).collect())
    );
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

fn postgres() {
    let Ok(url) = std::env::var("TOWER_SIEM_TEST_POSTGRES") else {
        println!("postgres: skipped (set TOWER_SIEM_TEST_POSTGRES)");
        return;
    };
    let events = 100_000;
    let mut rates = Vec::new();
    let mut tables = Vec::new();
    for _ in 0..ROUNDS {
        let table = unique("bench");
        let sink = PostgresSink::new(&url).unwrap().table(&table).unwrap();
        block_on(sink.migrate()).unwrap();
        rates.push(round(Box::new(sink), events));
        tables.push(table);
    }
    report("postgres", events, rates);
    // Leave nothing behind.
    let mut sql = String::new();
    for t in &tables {
        sql.push_str(&format!(
            "DROP TABLE IF EXISTS \"{t}\"; DELETE FROM tower_siem_schema WHERE table_name = '{t}';"
        ));
    }
    block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.batch_execute(&sql).await.unwrap();
    });
}

fn nats() {
    let Ok(url) = std::env::var("TOWER_SIEM_TEST_NATS") else {
        println!("nats: skipped (set TOWER_SIEM_TEST_NATS)");
        return;
    };
    let events = 200_000;
    let mut rates = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..ROUNDS {
        let stream = unique("BENCH");
        let prefix = unique("bench").replace('_', ".");
        let sink = NatsSink::new(url.clone())
            .unwrap()
            .stream(&stream)
            .unwrap()
            .subject_prefix(prefix)
            .unwrap();
        block_on(sink.connect()).unwrap();
        rates.push(round(Box::new(sink), events));
        streams.push(stream);
    }
    report("nats", events, rates);

    // The ceiling on this machine: async-nats without the pipeline or the sink, same bodies,
    // same 512-message batches (publish all, then await every ack).
    for (client, name) in [
        (Plain::JetStream, "nats (async-nats alone)"),
        (Plain::Core, "nats (core publish + one ack subscription)"),
    ] {
        let mut rates = Vec::new();
        for _ in 0..ROUNDS {
            let stream = unique("BENCH");
            let prefix = unique("bench").replace('_', ".");
            rates.push(block_on(plain_nats(client, &url, &stream, &prefix, events)));
            streams.push(stream);
        }
        report(name, events, rates);
    }
    block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        for s in &streams {
            js.delete_stream(s).await.unwrap();
        }
    });
}

/// How [`plain_nats`] publishes.
#[derive(Clone, Copy)]
enum Plain {
    /// async-nats's JetStream publish, one ack future per message: the sink's own path.
    JetStream,
    /// async-nats's core publish with a reply subject per message, one wildcard subscription
    /// collecting the stream's acknowledgements.
    Core,
}

/// Publishes `events` to a new stream with a plain async-nats client, in batches of 512 whose
/// acknowledgements are all awaited before the next.
async fn plain_nats(client: Plain, url: &str, stream: &str, prefix: &str, events: u64) -> Rate {
    use async_nats::jetstream::{self, message::PublishMessage};
    use futures_util::StreamExt;
    let nats = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(nats.clone());
    js.create_stream(jetstream::stream::Config {
        name: stream.to_owned(),
        subjects: vec![format!("{prefix}.>")],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .unwrap();
    let inbox = nats.new_inbox();
    let mut core_acks = nats.subscribe(format!("{inbox}.>")).await.unwrap();
    let subject = async_nats::Subject::from(format!("{prefix}.http.request"));
    let all: Vec<Event> = (0..events).map(event).collect();
    let start = Instant::now();
    let cpu = process_cpu();
    for (b, batch) in all.chunks(512).enumerate() {
        match client {
            Plain::JetStream => {
                let mut acks = Vec::with_capacity(batch.len());
                for e in batch {
                    let body = serde_json::to_vec(e).unwrap();
                    let message = PublishMessage::build()
                        .payload(body.into())
                        .message_id(e.id.to_string());
                    acks.push(js.send_publish(subject.clone(), message).await.unwrap());
                }
                for ack in acks {
                    ack.await.unwrap();
                }
            }
            Plain::Core => {
                for (i, e) in batch.iter().enumerate() {
                    let body = serde_json::to_vec(e).unwrap();
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Nats-Msg-Id", e.id.to_string().as_str());
                    nats.publish_with_reply_and_headers(
                        subject.clone(),
                        format!("{inbox}.{b}.{i}"),
                        headers,
                        body.into(),
                    )
                    .await
                    .unwrap();
                }
                for _ in batch {
                    let m = core_acks.next().await.unwrap();
                    assert!(!m.payload.windows(7).any(|w| w == b"\"error\""), "{m:?}");
                }
            }
        }
    }
    rate(events, start.elapsed(), process_cpu().saturating_sub(cpu))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run quickly there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("sinks: run with `cargo bench --features postgres,nats --bench sinks`");
        return;
    }
    nats();
    postgres();
}
