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

const CLIENTS: u64 = 1_000_000;
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
    for i in 0..CLIENTS {
        let ip = client(i);
        let uri = if i % 10 == 0 {
            format!("/missing/{i}?id=1%27+OR+%271%27%3D%271")
        } else {
            format!("/missing/{i}")
        };
        let req = Request::builder()
            .uri(uri)
            .header("user-agent", UA)
            .extension(ConnectInfo(SocketAddr::new(ip, 443)))
            .body(Body::empty())
            .unwrap();
        let res = ServiceExt::<Request<Body>>::ready(&mut svc)
            .await
            .unwrap()
            .call(req)
            .await
            .unwrap();
        if res.status() != StatusCode::NOT_FOUND {
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
        "{CLIENTS} clients in {elapsed:.1?}: VmRSS {}, VmHWM {}",
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
    assert_eq!(other_statuses, 0, "a fresh client's 404 stays a 404");
    assert_eq!(stats.entity_capacity, 50_000);
    assert_eq!(stats.window_capacity, 20_000);
    assert_eq!(stats.session_capacity, 10_000);
    assert!(stats.entities <= stats.entity_capacity, "{stats:?}");
    assert!(stats.max_window_keys <= stats.window_capacity, "{stats:?}");
    assert!(stats.sessions <= stats.session_capacity, "{stats:?}");
    assert!(stats.sessions > 0, "sessions were bound");
    assert!(stats.window_evictions > 0, "{stats:?}");
    // Every request and every fired event reached the engine.
    let fired = CLIENTS.div_ceil(7) + CLIENTS.div_ceil(13);
    assert_eq!(stats.events, CLIENTS + fired);
}
