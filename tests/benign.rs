//! Realistic traffic through the layer: benign clients are never denied, and every attack probe
//! leaves its client stepped up or blocked.

mod common;
mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::TestApp;
use support::corpus::{attack_requests, benign_requests, Req};
use tower_siem::{Action, Subject};

/// The request a browser or client would send for a corpus entry, from `ip`.
fn request(r: &Req, ip: IpAddr) -> Request<Body> {
    let mut b = Request::builder()
        .method(r.method)
        .uri(&r.path_and_query)
        .extension(ConnectInfo(SocketAddr::new(ip, 51_000)));
    if let Some(ua) = r.user_agent() {
        b = b.header("user-agent", ua);
    }
    b.body(Body::empty())
        .unwrap_or_else(|e| panic!("{} {:?}: {e}", r.method, r.path_and_query))
}

/// 100 client addresses: offices behind NAT (IPv4) and a few home IPv6 networks.
fn clients() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = (0..90u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(198, 51, 100 + i / 45, 10 + i % 45)))
        .collect();
    ips.extend(
        (0..10u16).map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x10 + i, 0, 0, 0, 0, 7))),
    );
    ips
}

#[tokio::test]
async fn benign_traffic_is_never_denied() {
    let app = TestApp::new();
    let benign = benign_requests();
    assert!(benign.len() >= 1_000, "only {} requests", benign.len());
    let clients = clients();
    // A fixed pseudo-random assignment: every client sends several requests, interleaved.
    let mut state: u64 = 0x0ff1_ce00;
    let mut per_ip: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut denied = Vec::new();
    let mut tagged = Vec::new();
    for r in &benign {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let ip = clients[((state >> 33) % clients.len() as u64) as usize];
        *per_ip.entry(ip).or_default() += 1;
        app.clock.advance(Duration::from_secs(1));
        let res = app.send(request(r, ip)).await;
        let status = res.status();
        *statuses.entry(status.as_u16()).or_default() += 1;
        if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
            denied.push(format!("{status} {ip} {} {}", r.method, r.path_and_query));
        }
        if res.headers().contains_key("x-step-up-required") {
            tagged.push(format!("{ip} {} {}", r.method, r.path_and_query));
        }
    }
    let offenders = app.siem.offenders();
    println!(
        "benign: {} requests from {} clients (min {}, max {} per client); statuses {statuses:?}; \
         denied {}; tagged for step-up {}; offenders {}",
        benign.len(),
        per_ip.len(),
        per_ip.values().min().unwrap(),
        per_ip.values().max().unwrap(),
        denied.len(),
        tagged.len(),
        offenders.len(),
    );
    assert_eq!(per_ip.len(), clients.len(), "every client took part");
    assert!(
        denied.is_empty(),
        "benign requests denied:\n{}",
        denied.join("\n")
    );
    let acted: Vec<_> = offenders
        .iter()
        .filter(|o| o.verdict.action >= Action::Throttle)
        .map(|o| format!("{:?}: {:?}", o.entity, o.verdict))
        .collect();
    assert!(
        acted.is_empty(),
        "benign clients throttled or blocked: {acted:?}"
    );
    assert!(
        tagged.is_empty(),
        "benign requests tagged for step-up:\n{}",
        tagged.join("\n")
    );
}

#[tokio::test]
async fn every_attack_probe_steps_up_or_blocks_its_client() {
    let app = TestApp::new();
    let attacks = attack_requests();
    let mut missed = Vec::new();
    let mut by_action: BTreeMap<Action, usize> = BTreeMap::new();
    for (i, (pack, r)) in attacks.iter().enumerate() {
        let i = u32::try_from(i).unwrap();
        let ip = IpAddr::V4(Ipv4Addr::from(0x6440_0000 + i)); // 100.64.0.0/10: one fresh client each
        let before = app.calls();
        let res = app.send(request(r, ip)).await;
        let v = app.siem.verdict_for(&Subject::ip(ip));
        *by_action.entry(v.action).or_default() += 1;
        if v.action < Action::StepUp {
            missed.push(format!(
                "{pack}: {} (UA {:?}) -> {v:?}",
                r.path_and_query, r.user_agent
            ));
        }
        if *pack == "scanner_ua" {
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{:?}", r.user_agent);
            assert_eq!(
                app.calls(),
                before,
                "{:?}: handler not called",
                r.user_agent
            );
        }
    }
    println!(
        "attacks: {} probes; client verdicts {by_action:?}",
        attacks.len()
    );
    assert!(
        missed.is_empty(),
        "clients left alone:\n{}",
        missed.join("\n")
    );
}
