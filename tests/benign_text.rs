//! False positives over a benign corpus of real free text and realistic URLs (see
//! `tests/corpus/README.md`): quotations cut into search-sized phrases, manual page summaries,
//! word pairs, the searches a developer types, and URLs with in-site redirects.
//!
//! `cargo test --test benign_text -- --nocapture` prints the figures. The goal: no client
//! denied, and at most 0.5 % of requests tagged for step-up.

mod common;
mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::TestApp;
use support::corpus::{form, BROWSER_UAS};
use tower_siem::signature::Inspector;
use tower_siem::Action;

/// Free-text searches, one per line: (source, content).
const TEXTS: &[(&str, &str)] = &[
    ("quotes", include_str!("corpus/benign/quotes.txt")),
    ("man", include_str!("corpus/benign/man.txt")),
    ("words", include_str!("corpus/benign/words.txt")),
    ("searches", include_str!("corpus/benign/searches.hand.txt")),
];

/// Whole path-and-query lines, as a browser sends them.
const URLS: &str = include_str!("corpus/benign/urls.hand.txt");

/// The share of requests that may be tagged for step-up, in percent.
const STEP_UP_GOAL: f64 = 0.5;

struct Benign {
    source: &'static str,
    path_and_query: String,
    user_agent: &'static str,
}

impl Benign {
    fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(&*self.path_and_query, |(p, _)| p)
    }

    fn query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, q)| q)
    }

    /// The request a browser at `ip` sends for it.
    fn request(&self, ip: IpAddr) -> Request<Body> {
        Request::builder()
            .method("GET")
            .uri(&self.path_and_query)
            .header("user-agent", self.user_agent)
            .extension(ConnectInfo(SocketAddr::new(ip, 52_000)))
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("{:?}: {e}", self.path_and_query))
    }
}

/// The corpus as requests, in a fixed shuffled order (so every client gets a mix of sources).
fn corpus() -> Vec<Benign> {
    let mut out = Vec::new();
    for &(source, content) in TEXTS {
        for line in content.lines().filter(|l| !l.trim().is_empty()) {
            out.push((source, format!("/search?q={}", form(line))));
        }
    }
    for line in URLS.lines().filter(|l| !l.trim().is_empty()) {
        out.push(("urls", line.to_owned()));
    }
    // Fisher-Yates with a fixed SplitMix64 stream.
    let mut state: u64 = 0x5eed_0000_0000_be99;
    for i in (1..out.len()).rev() {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.swap(i, (z % (i as u64 + 1)) as usize);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, (source, path_and_query))| Benign {
            source,
            path_and_query,
            user_agent: BROWSER_UAS[i % BROWSER_UAS.len()],
        })
        .collect()
}

/// 100 client addresses: offices behind NAT (IPv4) and a few home IPv6 networks.
fn clients() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = (0..90u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10 + i)))
        .collect();
    ips.extend(
        (0..10u16).map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x20 + i, 0, 0, 0, 0, 9))),
    );
    ips
}

#[test]
fn corpus_is_large_enough() {
    let corpus = corpus();
    assert!(corpus.len() >= 10_000, "only {} requests", corpus.len());
    let mut per_source: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &corpus {
        *per_source.entry(b.source).or_default() += 1;
    }
    println!(
        "benign text corpus: {} requests {per_source:?}",
        corpus.len()
    );
    for example in [
        "/account?next=/account/../orders",
        "/search?q=backup+first%3B+update+router+settings",
        "/search?q=chapter+3%3B+create+table+of+contents",
        "/search?q=Guns+N%27+--+Roses",
        "/search?q=cd+app%3B+ls+-la",
        "/search?q=alert%28%27hi%27%29+not+working",
    ] {
        assert!(
            corpus.iter().any(|b| b.path_and_query == example),
            "{example} is not in the corpus"
        );
    }
}

/// Precision of the built-in packs alone. Not an assertion: the figures, for `--nocapture`.
#[test]
fn report_signature_hits() {
    let inspector = Inspector::builtin();
    let corpus = corpus();
    let mut any = 0;
    let mut weak_only = 0;
    let mut per_pack: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut listed = Vec::new();
    for b in &corpus {
        let hits = inspector.inspect(b.path(), b.query(), Some(b.user_agent));
        if hits.is_empty() {
            continue;
        }
        any += 1;
        let weak = hits.iter().all(|h| h.weak);
        weak_only += usize::from(weak);
        for h in &hits {
            let e = per_pack.entry(h.pack.to_string()).or_default();
            if h.weak {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
        let what: Vec<String> = hits
            .iter()
            .map(|h| {
                format!(
                    "{}{} {:?}",
                    h.pack,
                    if h.weak { "(weak)" } else { "" },
                    h.sample
                )
            })
            .collect();
        listed.push(format!(
            "{} {:<8} {}\n    {}",
            if weak { "weak  " } else { "STRONG" },
            b.source,
            b.path_and_query,
            what.join("; ")
        ));
    }
    println!(
        "signature hits over {} benign requests: {any} with a hit ({:.2} %), {weak_only} with \
         weak hits only, {} with a strong hit; per pack (strong, weak): {per_pack:?}",
        corpus.len(),
        100.0 * any as f64 / corpus.len() as f64,
        any - weak_only
    );
    println!("{}", listed.join("\n"));
}

#[tokio::test]
async fn benign_text_is_never_denied() {
    let app = TestApp::new();
    let corpus = corpus();
    let clients = clients();
    let mut per_ip: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut denied = Vec::new();
    let mut tagged = Vec::new();
    for (i, b) in corpus.iter().enumerate() {
        let ip = clients[i % clients.len()];
        *per_ip.entry(ip).or_default() += 1;
        app.clock.advance(Duration::from_secs(1));
        let res = app.send(b.request(ip)).await;
        let status = res.status();
        *statuses.entry(status.as_u16()).or_default() += 1;
        if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
            denied.push(format!("{status} {ip} {}", b.path_and_query));
        }
        if res.headers().contains_key("x-step-up-required") {
            tagged.push(format!("{ip} {:<8} {}", b.source, b.path_and_query));
        }
    }
    let offenders = app.siem.offenders();
    let acted: Vec<String> = offenders
        .iter()
        .filter(|o| o.verdict.action >= Action::StepUp)
        .map(|o| format!("{:?}: {:?}", o.entity, o.verdict.action))
        .collect();
    let share = 100.0 * tagged.len() as f64 / corpus.len() as f64;
    println!(
        "benign text through the layer: {} requests from {} clients ({}..{} each); statuses \
         {statuses:?}; denied (403/429) {}; tagged for step-up {} ({share:.2} %, goal ≤ \
         {STEP_UP_GOAL} %); entities stepped up or worse {}",
        corpus.len(),
        per_ip.len(),
        per_ip.values().min().unwrap(),
        per_ip.values().max().unwrap(),
        denied.len(),
        tagged.len(),
        acted.len(),
    );
    for line in denied.iter().chain(&tagged).take(200) {
        println!("  {line}");
    }
    for line in &acted {
        println!("  offender {line}");
    }
    assert!(
        denied.is_empty(),
        "{} benign requests denied:\n{}",
        denied.len(),
        denied.join("\n")
    );
    assert!(
        share <= STEP_UP_GOAL,
        "{} benign requests ({share:.2} %) tagged for step-up, goal ≤ {STEP_UP_GOAL} %:\n{}",
        tagged.len(),
        tagged.join("\n")
    );
}

/// A person who does not get what they searched for searches again. Every line of the corpus
/// that some pack tags (weakly) is sent five times in a row by one client, within a minute:
/// none of them ends in a denial: weak evidence adds up to a step-up at most.
///
/// Lines with a strong hit (`{{7*7}} meaning`, `cmd /c dir`: 15 of the corpus, listed by
/// `report_signature_hits`) are left out on purpose: the same text is an attack wherever it
/// lands, and words after it do not disarm it, so an attacker could append words to any
/// payload if they did. Repeated, such a search is throttled.
#[tokio::test]
async fn repeating_a_tagged_search_is_never_denied() {
    let inspector = Inspector::builtin();
    let tagged: Vec<Benign> = corpus()
        .into_iter()
        .filter(|b| {
            let hits = inspector.inspect(b.path(), b.query(), Some(b.user_agent));
            !hits.is_empty() && hits.iter().all(|h| h.weak)
        })
        .collect();
    assert!(
        tagged.len() >= 20,
        "only {} weakly tagged lines: the test would prove little",
        tagged.len()
    );
    assert!(
        tagged
            .iter()
            .any(|b| b.path_and_query.contains("%3Cscript%3E")),
        "the `<script> tag placement` search is not weakly tagged"
    );
    let mut denied = Vec::new();
    for (i, b) in tagged.iter().enumerate() {
        // A fresh engine per search: one person, one search, repeated.
        let app = TestApp::new();
        let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i % 250) as u8 + 1));
        for _ in 0..5 {
            app.clock.advance(Duration::from_secs(10));
            let status = app.send(b.request(ip)).await.status();
            if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
                denied.push(format!("{status} {}", b.path_and_query));
                break;
            }
        }
    }
    assert!(
        denied.is_empty(),
        "{} of {} repeated searches denied:\n{}",
        denied.len(),
        tagged.len(),
        denied.join("\n")
    );
}
