//! Access-log parsing alone (no engine): lines per second for a combined line with a browser
//! user agent, a common line, an nginx `escape=json` line, and format detection.
//!
//! ```text
//! cargo bench --features cli --bench parse
//! ```

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tower_siem::cli::triage::parse::{detect, parse_line, Format};

const COMBINED: &[u8] = br#"10.0.71.160 - - [01/Jan/2024:00:00:00 +0000] "GET /products/1337?color=blue&size=m HTTP/1.1" 200 14072 "https://shop.example/" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36""#;
const COMMON: &[u8] =
    br#"10.0.71.160 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
const JSON: &[u8] = br#"{"time_iso8601":"2024-01-01T00:00:00+00:00","remote_addr":"10.0.71.160","remote_user":"","request":"GET /products/1337?color=blue&size=m HTTP/1.1","status":"200","body_bytes_sent":"14072","request_time":"0.004","http_referer":"https://shop.example/","http_user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"}"#;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_line");
    g.throughput(Throughput::Elements(1));
    for (name, format, line) in [
        ("combined", Format::Combined, COMBINED),
        ("common", Format::Common, COMMON),
        ("json", Format::Json, JSON),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| parse_line(format, black_box(line)).map(|l| l.status))
        });
    }
    g.finish();
    let lines: Vec<&[u8]> = std::iter::repeat_n(COMBINED, 64).collect();
    c.bench_function("detect_64_lines", |b| {
        b.iter(|| detect(black_box(&lines).iter().copied()))
    });
}

criterion_group!(benches, parse);
criterion_main!(benches);
