//! Bounded memory: a flood of distinct client addresses cannot grow the SIEM past its
//! configured capacities.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::{router, AppState};
use tower::{Layer, Service, ServiceExt};
use tower_siem::{Event, Siem};

/// Distinct clients; `TOWER_SIEM_MEMORY_CLIENTS` raises it (the README quotes a run with 3,000,000).
fn clients() -> u64 {
    std::env::var("TOWER_SIEM_MEMORY_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}
const SQLMAP: &str = "sqlmap/1.7.2#stable (https://sqlmap.org)";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";

/// SplitMix64: reproducible user names and sessions without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Client `i`: IPv4 for even `i`, otherwise an address in its own IPv6 /64.
fn client(i: u64) -> IpAddr {
    if i % 2 == 0 {
        IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + u32::try_from(i).unwrap()))
    } else {
        let net = 0x2001_0db8_0000_0000u128 + u128::from(i);
        IpAddr::V6(Ipv6Addr::from((net << 64) | 0x1234))
    }
}

fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

#[tokio::test]
#[ignore = "heavy: .ci/run runs it in release mode"]
async fn a_million_clients_stay_within_the_configured_capacities() {
    let siem = Siem::builder()
        .entity_capacity(50_000)
        .window_capacity(20_000)
        .session_capacity(10_000)
        .decision_capacity(500)
        .build()
        .unwrap();
    let state = AppState {
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let mut svc = siem.layer().layer(router(state));
    let mut rng = Rng(7);
    let mut other_statuses = 0u64;
    let start = Instant::now();
    println!(
        "start: VmRSS {}, VmHWM {}",
        proc_status("VmRSS:"),
        proc_status("VmHWM:")
    );
    let clients = clients();
    let mut denied = 0u64;
    for i in 0..clients {
        let ip = client(i);
        let uri = if i % 10 == 0 {
            format!("/missing/{i}?id=1%27+OR+%271%27%3D%271")
        } else {
            format!("/missing/{i}")
        };
        // One client in 1,000 is an attack tool, blocked on sight: more blocks than the
        // decision table holds. Always an IPv4 client, at most one per /24, so no network is
        // escalated and every other client's 404 stays a 404.
        let tool = i % 1_000 == 0;
        let req = Request::builder()
            .uri(uri)
            .header("user-agent", if tool { SQLMAP } else { UA })
            .extension(ConnectInfo(SocketAddr::new(ip, 443)))
            .body(Body::empty())
            .unwrap();
        let res = ServiceExt::<Request<Body>>::ready(&mut svc)
            .await
            .unwrap()
            .call(req)
            .await
            .unwrap();
        if tool && res.status() == StatusCode::FORBIDDEN {
            denied += 1;
        } else if res.status() != StatusCode::NOT_FOUND {
            other_statuses += 1;
        }
        if i % 7 == 0 {
            let user = format!("user{}", rng.next() % 2_000_000);
            siem.fire(Event::new("auth.failure").ip(ip).user(user));
        }
        if i % 13 == 0 {
            let user = format!("user{}", rng.next() % 2_000_000);
            let session = format!("{:016x}", rng.next());
            siem.fire(
                Event::new("auth.success")
                    .ip(ip)
                    .user(user)
                    .session(session),
            );
        }
        if (i + 1) % 250_000 == 0 {
            println!(
                "{} clients: {:.1?}, VmRSS {}",
                i + 1,
                start.elapsed(),
                proc_status("VmRSS:")
            );
        }
    }
    let elapsed = start.elapsed();
    let stats = siem.stats().engine;
    println!(
        "{clients} clients in {elapsed:.1?}: VmRSS {}, VmHWM {}",
        proc_status("VmRSS:"),
        proc_status("VmHWM:")
    );
    println!(
        "entities {}/{}, max window keys {}/{}, sessions {}/{}, window evictions {}, events {}",
        stats.entities,
        stats.entity_capacity,
        stats.max_window_keys,
        stats.window_capacity,
        stats.sessions,
        stats.session_capacity,
        stats.window_evictions,
        stats.events
    );
    println!(
        "decisions {}/{}, dropped to stay within it {}",
        stats.decisions.held, stats.decisions.capacity, stats.decisions.evicted
    );
    assert_eq!(other_statuses, 0, "a fresh client's 404 stays a 404");
    assert_eq!(denied, clients.div_ceil(1_000), "every attack tool blocked");
    assert!(stats.decisions.held <= 500, "{:?}", stats.decisions);
    assert_eq!(
        stats.decisions.held + stats.decisions.evicted,
        denied,
        "every block held or counted"
    );
    assert_eq!(
        stats.entity_capacity,
        50_000 + 500,
        "undecided and decided entities"
    );
    assert_eq!(stats.window_capacity, 20_000);
    assert_eq!(stats.session_capacity, 10_000);
    assert!(stats.entities <= stats.entity_capacity, "{stats:?}");
    assert!(stats.max_window_keys <= stats.window_capacity, "{stats:?}");
    assert!(stats.sessions <= stats.session_capacity, "{stats:?}");
    assert!(stats.sessions > 0, "sessions were bound");
    assert!(stats.window_evictions > 0, "{stats:?}");
    // Every request and every fired event reached the engine.
    let fired = clients.div_ceil(7) + clients.div_ceil(13);
    assert_eq!(stats.events, clients + fired);
}
