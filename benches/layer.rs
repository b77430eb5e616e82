//! Overhead of `SiemLayer` on the allow path: the same trivial service called bare, behind the
//! default rule pack, and behind the default pack with a JSONL sink.
//!
//! Requests look like browser traffic (Chrome user agent, a few usual headers) from a pool of
//! client addresses, a tenth of which already carry a score below the step-up threshold, so the
//! gate reads both present and absent keys. Requests are built outside the timed section, in
//! chunks, identically for every variant.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::{header, Request, Response};
use http_body_util::Full;
use tower::{Service, ServiceExt};
use tower_siem::event::HttpInfo;
use tower_siem::sink::JsonlSink;
use tower_siem::{Event, Siem, SiemLayer};

const CHROME_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const CLIENTS: usize = 1000;
const CHUNK: u64 = 1024;

/// Client addresses: mostly IPv4 from a few public-looking networks, one in ten IPv6.
fn client_pool() -> Vec<SocketAddr> {
    (0..CLIENTS)
        .map(|i| {
            let ip = if i % 10 == 9 {
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    (i / 256) as u16,
                    (i % 256) as u16,
                    0,
                    0,
                    0,
                    1,
                ))
            } else {
                IpAddr::V4(Ipv4Addr::new(
                    [81, 203, 198][i % 3],
                    51,
                    (i / 250) as u8,
                    (i % 250 + 1) as u8,
                ))
            };
            SocketAddr::new(ip, 40_000 + (i as u16 % 20_000))
        })
        .collect()
}

fn request(peer: SocketAddr, n: usize) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .uri(if n % 4 == 0 {
            "/products/42?page=2&sort=price"
        } else {
            "/"
        })
        .header(header::HOST, "shop.example.com")
        .header(header::USER_AGENT, CHROME_UA)
        .header(
            header::ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .header(header::ACCEPT_LANGUAGE, "en-GB,en;q=0.9")
        .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

/// Gives every tenth client a probe-burst score (20, below step-up at 30): those requests'
/// gate finds a stored entity and still allows them.
fn seed(siem: &Siem, pool: &[SocketAddr]) {
    for peer in pool.iter().step_by(10) {
        for _ in 0..20 {
            let mut e = Event::new("http.request").ip(peer.ip());
            e.http = Some(HttpInfo {
                method: "GET".into(),
                path: "/missing".into(),
                status: Some(404),
                ..HttpInfo::default()
            });
            siem.fire(e);
        }
        assert!(!siem
            .verdict_for(&tower_siem::Subject::ip(peer.ip()))
            .is_suspicious());
    }
}

/// Times `iters` calls, building each chunk of requests before its timed section.
fn run<S>(rt: &tokio::runtime::Runtime, svc: &mut S, pool: &[SocketAddr], iters: u64) -> Duration
where
    S: Service<Request<Full<Bytes>>> + Send,
    S::Error: std::fmt::Debug,
{
    let mut total = Duration::ZERO;
    let mut done = 0u64;
    let mut n = 0usize;
    while done < iters {
        let len = (iters - done).min(CHUNK);
        let reqs: Vec<_> = (0..len)
            .map(|_| {
                n = n.wrapping_add(7919);
                request(pool[n % pool.len()], n)
            })
            .collect();
        let start = Instant::now();
        rt.block_on(async {
            for req in reqs {
                let res = svc.ready().await.unwrap().call(req).await.unwrap();
                drop(std::hint::black_box(res));
            }
        });
        total += start.elapsed();
        done += len;
    }
    total
}

fn hello(
    _req: Request<Full<Bytes>>,
) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
    std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"ok")))))
}

fn layer_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pool = client_pool();
    let dir = tempfile::tempdir().expect("tempdir");

    let plain = Siem::builder().build().expect("default pack");
    seed(&plain, &pool);
    let with_sink = Siem::builder()
        .sink(JsonlSink::new(dir.path().join("events.jsonl")))
        .build()
        .expect("default pack with sink");
    seed(&with_sink, &pool);

    let mut g = c.benchmark_group("layer");
    g.throughput(Throughput::Elements(1));

    let mut bare = tower::service_fn(hello);
    g.bench_function("bare", |b| {
        b.iter_custom(|iters| run(&rt, &mut bare, &pool, iters))
    });

    let mut layered = tower::Layer::layer(&SiemLayer::new(plain.clone()), tower::service_fn(hello));
    g.bench_function("layered", |b| {
        b.iter_custom(|iters| run(&rt, &mut layered, &pool, iters))
    });

    let mut sinked = tower::Layer::layer(&with_sink.layer(), tower::service_fn(hello));
    g.bench_function("layered_jsonl_sink", |b| {
        b.iter_custom(|iters| run(&rt, &mut sinked, &pool, iters))
    });

    // The same layer on a `RedisStore` connected to a real Redis (its gate reads memory only),
    // when `TOWER_SIEM_TEST_REDIS` names one.
    #[cfg(feature = "redis")]
    let shared = match std::env::var("TOWER_SIEM_TEST_REDIS") {
        Ok(url) => {
            let store = tower_siem::store::RedisStore::builder(url)
                .namespace(format!("bench-{}", std::process::id()))
                .build()
                .expect("redis store");
            assert!(
                rt.block_on(store.synced(Duration::from_secs(5))),
                "Redis does not answer: {:?}",
                store.stats()
            );
            let siem = Siem::builder().store(store).build().expect("default pack");
            seed(&siem, &pool);
            let mut svc = tower::Layer::layer(&siem.layer(), tower::service_fn(hello));
            g.bench_function("layered_redis_store", |b| {
                b.iter_custom(|iters| run(&rt, &mut svc, &pool, iters))
            });
            Some(siem)
        }
        Err(_) => {
            eprintln!("layer/layered_redis_store skipped: set TOWER_SIEM_TEST_REDIS");
            None
        }
    };
    g.finish();
    #[cfg(feature = "redis")]
    if let Some(siem) = shared {
        let stats = siem.stats().engine.shared.expect("a sharing store");
        assert!(stats.connected && stats.errors == 0, "{stats:?}");
    }

    // Nothing may have been denied: this measures the allow path.
    for siem in [&plain, &with_sink] {
        let stats = siem.stats();
        assert!(
            stats
                .engine
                .rules
                .iter()
                .all(|r| r.id == "http.probe_burst" || r.hits == 0),
            "a rule fired during the allow-path bench: {:?}",
            stats.engine.rules
        );
    }
    with_sink.shutdown(Duration::from_secs(5));
}

criterion_group!(benches, layer_overhead);
criterion_main!(benches);
