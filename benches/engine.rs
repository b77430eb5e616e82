//! Engine costs with the built-in rule pack: ingest rate over a realistic event mix, the
//! inline signature inspection of a benign request (ids, and free-text searches), and the
//! gate's verdict lookup.
//!
//! The mix is ~90% `http.request` (mostly 200s, some 404s) from 20,000 clients, plus logins
//! failing and succeeding, second factors and password resets for 5,000 users. Event times
//! advance by 2 ms per event; after each pass over the mix every time is shifted forward by
//! the mix's span (outside the timed section), so windows always see time moving on.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tower_siem::event::HttpInfo;
use tower_siem::{Event, Siem, Subject};

const CHROME_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const EVENTS: usize = 100_000;
const CLIENTS: u64 = 20_000;
const USERS: u64 = 5_000;
const STEP_MS: i64 = 2;

/// A small deterministic generator, so every run ingests the same mix.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn client(i: u64) -> IpAddr {
    if i % 10 == 9 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            (i >> 16) as u16,
            i as u16,
            0,
            0,
            0,
            1,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x5100_0000 + i as u32 * 7))
    }
}

const PATHS: [&str; 6] = [
    "/",
    "/products",
    "/products/42",
    "/cart",
    "/static/app.js",
    "/api/v1/search",
];

fn mix(start_ms: i64) -> Vec<Event> {
    let mut rng = SplitMix(0x5151_2024);
    (0..EVENTS)
        .map(|i| {
            let at = jiff::Timestamp::from_millisecond(start_ms + i as i64 * STEP_MS)
                .expect("valid time");
            let ip = client(rng.below(CLIENTS));
            let user = format!("user{}", rng.below(USERS));
            let roll = rng.below(1000);
            let e = match roll {
                0..=899 => {
                    let status = if roll < 860 { 200 } else { 404 };
                    let path = if status == 404 {
                        "/old/page.html"
                    } else {
                        PATHS[(roll % 6) as usize]
                    };
                    let mut e = Event::new("http.request").user_agent(CHROME_UA);
                    e.http = Some(HttpInfo {
                        method: "GET".into(),
                        route: (status == 200).then(|| path.to_owned()),
                        path: path.into(),
                        status: Some(status),
                        latency_us: Some(150 + rng.below(400)),
                        bytes: Some(512 + rng.below(4096)),
                        ..HttpInfo::default()
                    });
                    e
                }
                900..=949 => Event::new("auth.failure").user(user),
                950..=979 => Event::new("auth.success").user(user),
                980..=989 => Event::new("mfa.success").user(user),
                990..=994 => Event::new("mfa.failure").user(user),
                _ => Event::new("account.password_reset").user(user),
            };
            e.ip(ip).at(at)
        })
        .collect()
}

/// Feeds the mix through `f`, `iters` events in all, in passes over the whole vector.
fn ingest_passes(events: &mut [Event], iters: u64, mut f: impl FnMut(&Event)) -> Duration {
    let span = events.len() as i64 * STEP_MS;
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    let mut pos = 0;
    while left > 0 {
        let end = events.len().min(pos + left);
        let start = Instant::now();
        for e in &events[pos..end] {
            f(e);
        }
        total += start.elapsed();
        left -= end - pos;
        pos = end;
        if pos == events.len() {
            pos = 0;
            for e in events.iter_mut() {
                e.time = jiff::Timestamp::from_millisecond(e.millis() + span).expect("valid time");
            }
        }
    }
    total
}

fn engine(c: &mut Criterion) {
    let siem = Siem::builder().build().expect("default pack");
    let t0 = siem.now_millis() - EVENTS as i64 * STEP_MS;
    let mut events = mix(t0);

    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ingest_only", |b| {
        b.iter_custom(|iters| ingest_passes(&mut events, iters, |e| siem.engine().ingest_only(e)))
    });
    // `fire` takes the event by value: this includes one clone per event, measured alone below.
    let fired = Siem::builder().build().expect("default pack");
    let mut events2 = mix(t0);
    g.bench_function("fire_clone", |b| {
        b.iter_custom(|iters| {
            ingest_passes(&mut events2, iters, |e| {
                black_box(fired.fire(e.clone()));
            })
        })
    });
    g.bench_function("clone_only", |b| {
        b.iter_custom(|iters| {
            ingest_passes(&mut events2, iters, |e| {
                black_box(e.clone());
            })
        })
    });

    let benign = Subject::ip(client(17));
    let now = siem.now_millis();
    g.bench_function("inspect_benign", |b| {
        b.iter(|| {
            siem.engine().inspect(
                black_box(&benign),
                black_box("/products/42"),
                black_box(Some("page=2&sort=price&q=blue+shoes")),
                black_box(Some(CHROME_UA)),
                now,
            )
        })
    });
    // Free-text searches and in-site URLs as people send them (the benign corpus of the
    // tests: quotations, manual-page summaries, word pairs, developer searches), form-encoded:
    // the cost of inspecting a query that holds text rather than ids. One element is one
    // request of the corpus, taken in turn.
    let searches = benign_queries();
    let mut at = 0;
    g.bench_function("inspect_benign_text", |b| {
        b.iter(|| {
            at = (at + 1) % searches.len();
            siem.engine().inspect(
                black_box(&benign),
                black_box("/search"),
                black_box(Some(searches[at].as_str())),
                black_box(Some(CHROME_UA)),
                now,
            )
        })
    });
    // A match also adds score to the attacker's entity in the store.
    let attacker = Subject::ip(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));
    g.bench_function("inspect_sqli", |b| {
        b.iter(|| {
            siem.engine().inspect(
                black_box(&attacker),
                black_box("/search"),
                black_box(Some("q=1%27%20UNION%20SELECT%20password%20FROM%20users--")),
                black_box(Some(CHROME_UA)),
                now,
            )
        })
    });

    // A client with a stored score below step-up (one probe burst: 404s for 20 distinct paths),
    // and one never seen.
    let probed_ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8));
    for i in 0..20 {
        let mut e = Event::new("http.request").ip(probed_ip);
        e.http = Some(HttpInfo {
            method: "GET".into(),
            path: format!("/missing/{i}"),
            status: Some(404),
            ..HttpInfo::default()
        });
        siem.fire(e);
    }
    let scored = Subject::ip(probed_ip);
    let v = siem.verdict_for(&scored);
    assert!(
        v.score > 0.0 && v.action == tower_siem::Action::Allow,
        "the probed IP should carry a score below step-up, got {v:?}"
    );
    let unknown = Subject::ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    g.bench_function("verdict_at_unknown_ip", |b| {
        b.iter(|| siem.engine().verdict_at(black_box(&unknown), now))
    });
    g.bench_function("verdict_at_scored_ip", |b| {
        b.iter(|| siem.engine().verdict_at(black_box(&scored), now))
    });
    let with_user = Subject::ip(client(17)).with_user("user42");
    g.bench_function("verdict_at_ip_and_user", |b| {
        b.iter(|| siem.engine().verdict_at(black_box(&with_user), now))
    });
    g.finish();
}

/// The benign corpus of `tests/corpus/benign` as query strings (`q=` and the text,
/// form-encoded; whole lines of `urls.hand.txt` keep their own query).
fn benign_queries() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/benign");
    let mut out = Vec::new();
    for file in ["quotes.txt", "man.txt", "words.txt", "searches.hand.txt"] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).expect("benign corpus");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let encoded: String = line
                .bytes()
                .map(|b| match b {
                    b' ' => "+".to_owned(),
                    b if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) => {
                        (b as char).to_string()
                    }
                    b => format!("%{b:02X}"),
                })
                .collect();
            out.push(format!("q={encoded}"));
        }
    }
    let urls = std::fs::read_to_string(format!("{dir}/urls.hand.txt")).expect("benign corpus");
    out.extend(
        urls.lines()
            .filter_map(|l| l.split_once('?'))
            .map(|(_, q)| q.to_owned()),
    );
    out
}

criterion_group!(benches, engine);
criterion_main!(benches);
