//! Client-address spoofing through the layer: what a client's headers can and cannot change
//! about who the SIEM thinks it is, and the step-up header a client cannot forge.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use common::{body_text, TestApp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tower_siem::engine::EntityKey;
use tower_siem::identify::IdentifyErrorKind;
use tower_siem::{Action, Event, Siem, Subject};

/// Blocked by the operator in every test.
const BLOCKED_V4: &str = "203.0.113.66";
/// Blocked as a /64.
const BLOCKED_V6: &str = "2001:db8:bad:1::66";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Peers that must be denied: the blocked address in every spelling a socket can report.
const BLOCKED_PEERS: &[&str] = &[
    BLOCKED_V4,
    "::ffff:203.0.113.66",
    BLOCKED_V6,
    "2001:db8:bad:1:ffff:ffff:ffff:ffff",
];

/// Peers that must be let through, whatever they claim. Under the default layer a private
/// address is no more trusted than a public one.
const OTHER_PEERS: &[&str] = &[
    "198.51.100.20",
    "10.0.0.5",
    "127.0.0.1",
    "2001:db8:600d::20",
    "2001:db8:bad:2::66",
    "::1",
];

/// Forwarding headers a client might send; `{B4}` and `{B6}` stand for the blocked addresses.
#[rustfmt::skip]
const CASES: &[&[(&str, &str)]] = &[
    &[],
    &[("x-forwarded-for", "1.2.3.4")],
    &[("x-forwarded-for", "127.0.0.1")],
    &[("x-forwarded-for", "10.0.0.1")],
    &[("x-forwarded-for", "{B4}")],
    &[("x-forwarded-for", "{B6}")],
    &[("x-forwarded-for", "1.2.3.4, {B4}")],
    &[("x-forwarded-for", "{B4}, 1.2.3.4")],
    &[("x-forwarded-for", "{B4},{B4},{B4}")],
    &[("x-forwarded-for", "::ffff:{B4}")],
    &[("x-forwarded-for", "[{B6}]:443")],
    &[("x-forwarded-for", "{B4}:8080")],
    &[("x-forwarded-for", "unknown")],
    &[("x-forwarded-for", "")],
    &[("x-forwarded-for", " \t ")],
    &[("x-forwarded-for", ",,,")],
    &[("x-forwarded-for", "1.2.3.4:99999")],
    &[("x-forwarded-for", "010.0.0.1")],
    &[("x-forwarded-for", "fe80::1%eth0")],
    &[("x-forwarded-for", "\"{B4}\"")],
    &[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8")],
    &[("x-forwarded-for", "{B4}"), ("x-forwarded-for", "10.0.0.2")],
    &[("x-forwarded-for", "10.0.0.2, 10.0.0.3, 192.168.0.1, 172.16.0.1")],
    &[("x-forwarded-for", "2001:db8::1, ::1, fd00::1")],
    &[("forwarded", "for=1.2.3.4")],
    &[("forwarded", "for={B4}")],
    &[("forwarded", "for=\"[{B6}]:80\"")],
    &[("forwarded", "For=\"{B4}:4711\";proto=https")],
    &[("forwarded", "for=_hidden")],
    &[("forwarded", "for=unknown")],
    &[("forwarded", "by=10.0.0.1;for=1.2.3.4;host=example.com;proto=http")],
    &[("forwarded", "for=6.6.6.6, for={B4}")],
    &[("forwarded", "for={B4};host=\"a,for=6.6.6.6\"")],
    &[("forwarded", "proto=https")],
    &[("forwarded", "for=\"{B4}")],
    &[("forwarded", "for=127.0.0.1"), ("forwarded", "for=10.0.0.1")],
    &[("x-real-ip", "1.2.3.4")],
    &[("x-real-ip", "{B4}")],
    &[("x-real-ip", "{B6}")],
    &[("x-real-ip", "127.0.0.1")],
    &[("x-client-ip", "{B4}")],
    &[("true-client-ip", "{B4}")],
    &[("cf-connecting-ip", "{B4}")],
    &[("fastly-client-ip", "{B4}")],
    &[("x-cluster-client-ip", "{B4}")],
    &[("x-original-forwarded-for", "{B4}")],
    &[("forwarded-for", "{B4}")],
    &[("x-forwarded", "for={B4}")],
    &[("client-ip", "{B4}")],
    &[("x-forwarded-host", "{B4}"), ("x-forwarded-proto", "https")],
    &[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8"), ("x-real-ip", "9.9.9.9")],
    &[("x-forwarded-for", "{B4}"), ("forwarded", "for={B4}"), ("x-real-ip", "{B4}")],
    &[("x-forwarded-for", "{B6}"), ("forwarded", "for=\"[{B6}]\""), ("x-real-ip", "{B6}")],
    &[("x-forwarded-for", "1.2.3.4, 10.0.0.1"), ("x-forwarded-for", "{B4}, 127.0.0.1")],
    &[("x-forwarded-for", "\u{e9}\u{e9}\u{e9}")],
];

fn fill(template: &str) -> String {
    template
        .replace("{B4}", BLOCKED_V4)
        .replace("{B6}", BLOCKED_V6)
}

/// A long chain, and one with an oversized element: still only the peer counts.
fn extra_cases() -> Vec<Vec<(String, String)>> {
    let long: Vec<String> = (0..100)
        .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
        .collect();
    vec![
        vec![("x-forwarded-for".into(), long.join(", "))],
        vec![(
            "x-forwarded-for".into(),
            format!("{BLOCKED_V4}, {}1.2.3.4", " ".repeat(10_000)),
        )],
    ]
}

fn all_cases() -> Vec<Vec<(String, String)>> {
    let mut cases: Vec<Vec<(String, String)>> = CASES
        .iter()
        .map(|c| c.iter().map(|(n, v)| ((*n).to_owned(), fill(v))).collect())
        .collect();
    cases.extend(extra_cases());
    cases
}

fn request(peer: IpAddr, headers: &[(String, String)]) -> Request<Body> {
    let mut r = Request::builder()
        .uri("/")
        .extension(ConnectInfo(SocketAddr::new(peer, 40_000)))
        .body(Body::empty())
        .unwrap();
    for (name, value) in headers {
        r.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    r
}

fn block_both(siem: &Siem) {
    for b in [BLOCKED_V4, BLOCKED_V6] {
        siem.block(&EntityKey::Ip(ip(b)), Duration::from_secs(3600));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[tokio::test]
async fn untrusted_peers_headers_never_change_the_key() {
    let app = TestApp::new();
    block_both(&app.siem);
    let cases = all_cases();
    assert!(cases.len() >= 50, "{}", cases.len());
    let mut failures = Vec::new();
    for headers in &cases {
        for peer in BLOCKED_PEERS {
            let before = app.calls();
            let status = app.send(request(ip(peer), headers)).await.status();
            if status != StatusCode::FORBIDDEN || app.calls() != before {
                failures.push(format!("blocked peer {peer} with {headers:?}: {status}"));
            }
        }
        for peer in OTHER_PEERS {
            let before = app.calls();
            let status = app.send(request(ip(peer), headers)).await.status();
            if status != StatusCode::OK || app.calls() != before + 1 {
                failures.push(format!("other peer {peer} with {headers:?}: {status}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nobody but the two blocked networks was ever keyed.
    let keyed: Vec<EntityKey> = app.siem.offenders().into_iter().map(|o| o.entity).collect();
    assert_eq!(keyed.len(), 2, "{keyed:?}");
}

fn any_peer() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<u128>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        any::<u32>().prop_map(|b| IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped())),
    ]
}

/// One element of a forwarding header: often an address that matters, sometimes noise.
fn element() -> impl Strategy<Value = String> {
    let noise = prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(b"0123456789abcdef.:,;=\"[]_ \tfor".to_vec()),
            1 => any::<u8>().prop_filter("header byte", |b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f)),
        ],
        0..40,
    )
    .prop_map(|v| String::from_utf8_lossy(&v).into_owned());
    prop_oneof![
        Just(BLOCKED_V4.to_owned()),
        Just(format!("::ffff:{BLOCKED_V4}")),
        Just(format!("[{BLOCKED_V6}]:443")),
        Just(format!("for={BLOCKED_V4}")),
        Just(format!("for=\"[{BLOCKED_V6}]\"")),
        any_peer().prop_map(|a| a.to_string()),
        noise,
    ]
}

fn header_set() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop::sample::select(vec!["x-forwarded-for", "forwarded", "x-real-ip"]);
    let line = prop::collection::vec(element(), 0..5).prop_map(|e| e.join(", "));
    prop::collection::vec((name, line), 0..6).prop_map(|v| {
        v.into_iter()
            .map(|(n, l)| (n.to_owned(), l.replace(['\r', '\n', '\0', '\x7f'], "")))
            .collect()
    })
}

#[test]
fn untrusted_peers_headers_never_change_the_key_proptest() {
    let rt = runtime();
    let app = TestApp::new();
    block_both(&app.siem);
    let blocked_keys = [
        app.siem.engine().ip_key(ip(BLOCKED_V4)),
        app.siem.engine().ip_key(ip(BLOCKED_V6)),
    ];
    let blocked_peer = prop::sample::select(BLOCKED_PEERS.to_vec()).prop_map(ip);
    let mut runner = TestRunner::new(Config::with_cases(256));
    runner
        .run(
            &(blocked_peer, any_peer(), header_set()),
            |(blocked, other, headers)| {
                rt.block_on(async {
                    let status = app.send(request(blocked, &headers)).await.status();
                    prop_assert_eq!(status, StatusCode::FORBIDDEN);
                    if blocked_keys.contains(&app.siem.engine().ip_key(other)) {
                        return Ok(());
                    }
                    let status = app.send(request(other, &headers)).await.status();
                    prop_assert_eq!(status, StatusCode::OK);
                    Ok::<(), TestCaseError>(())
                })
            },
        )
        .unwrap();
}

#[tokio::test]
async fn trusted_proxy_chain_is_walked_from_the_right() {
    let headers = vec![(
        "x-forwarded-for".to_owned(),
        "6.6.6.6, 203.0.113.9".to_owned(),
    )];
    let trusting = |l: tower_siem::SiemLayer| l.trusted_proxies(["10.0.0.0/8"]).unwrap();

    // The address the proxy appended is the client.
    let app = TestApp::with(|b| b, trusting);
    app.siem
        .block(&EntityKey::Ip(ip("203.0.113.9")), Duration::from_secs(60));
    let before = app.calls();
    let res = app.send(request(ip("10.0.0.5"), &headers)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.calls(), before);
    // The proxy's other clients are unaffected.
    let other = vec![("x-forwarded-for".to_owned(), "198.51.100.1".to_owned())];
    let res = app.send(request(ip("10.0.0.5"), &other)).await;
    assert_eq!(res.status(), StatusCode::OK);
    // A peer outside the trusted networks cannot borrow the mechanism.
    let res = app.send(request(ip("198.51.100.20"), &headers)).await;
    assert_eq!(res.status(), StatusCode::OK);

    // What the client itself prepended is never the key.
    let app = TestApp::with(|b| b, trusting);
    app.siem
        .block(&EntityKey::Ip(ip("6.6.6.6")), Duration::from_secs(60));
    let res = app.send(request(ip("10.0.0.5"), &headers)).await;
    assert_eq!(res.status(), StatusCode::OK);
    // ...it was keyed as 203.0.113.9: a probing burst through the proxy lands on that address,
    // not on the proxy and not on what the client claimed.
    for i in 0..25 {
        let mut r = request(ip("10.0.0.5"), &headers);
        *r.uri_mut() = format!("/nope-{i}").parse().unwrap();
        app.send(r).await;
    }
    let client = app
        .siem
        .explain(&EntityKey::Ip(ip("203.0.113.9")))
        .expect("the client is an entity");
    assert!(
        client
            .contributions
            .iter()
            .any(|c| &*c.rule == "http.probe_burst"),
        "{client:?}"
    );
    assert!(app.siem.explain(&EntityKey::Ip(ip("10.0.0.5"))).is_none());
    let res = app.send(request(ip("10.0.0.5"), &other)).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the proxy's other clients still get in"
    );
    let claimed = app.siem.explain(&EntityKey::Ip(ip("6.6.6.6"))).unwrap();
    assert!(claimed.contributions.is_empty(), "{claimed:?}");
}

#[test]
fn trusting_every_proxy_is_refused() {
    let siem = Siem::builder().build().unwrap();
    for cidrs in [
        vec!["0.0.0.0/0"],
        vec!["::/0"],
        vec!["10.0.0.0/8", "0.0.0.0/0"],
        vec!["::/0", "fd00::/8"],
        // Networks that together cover a whole family.
        vec!["0.0.0.0/1", "128.0.0.0/1"],
        vec!["::/1", "8000::/1"],
    ] {
        let err = siem.layer().trusted_proxies(&cidrs).unwrap_err();
        assert_eq!(err.kind(), IdentifyErrorKind::TrustAll, "{cidrs:?}");
    }
    // A public network broader than /8 (IPv4) or /24 (IPv6).
    for cidrs in [vec!["10.0.0.0/8", "64.0.0.0/3"], vec!["2001::/16"]] {
        let err = siem.layer().trusted_proxies(&cidrs).unwrap_err();
        assert_eq!(err.kind(), IdentifyErrorKind::TooBroad, "{cidrs:?}");
        assert!(err.to_string().contains(cidrs[cidrs.len() - 1]), "{err}");
    }
    assert!(siem.layer().trusted_proxies(["10.0.0.0/8", "::1"]).is_ok());
    assert!(siem.layer().trusted_proxies(["104.16.0.0/13"]).is_ok());
    assert!(siem.layer().trusted_proxies(["2a06:98c0::/29"]).is_ok());
}

/// `x-step-up-required` with each letter's case chosen at random.
fn step_up_name() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), 18).prop_map(|upper| {
        "x-step-up-required"
            .chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("header byte", |b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f)),
        0..40,
    )
}

#[test]
fn forged_step_up_header_never_reaches_the_handler() {
    let rt = runtime();
    let app = TestApp::new();
    // A client the SIEM really wants stepped up: the handler sees exactly the layer's header.
    let suspect = ip("192.0.2.77");
    for i in 0..10 {
        app.siem.fire(
            Event::new("auth.failure")
                .ip(suspect)
                .user(format!("u{}", i % 2)),
        );
    }
    let v = app.siem.verdict_for(&Subject::ip(suspect));
    assert_eq!(v.action, Action::StepUp, "{v:?}");
    let expected = v.reasons_header();
    let clean = ip("198.51.100.30");

    let forged = prop::collection::vec((step_up_name(), header_value()), 1..4);
    let mut runner = TestRunner::new(Config::with_cases(256));
    runner
        .run(&forged, |forged| {
            rt.block_on(async {
                for (peer, want) in [(clean, ""), (suspect, expected.as_str())] {
                    let mut r = request(peer, &[]);
                    *r.uri_mut() = "/echo".parse().unwrap();
                    for (name, value) in &forged {
                        r.headers_mut().append(
                            HeaderName::from_bytes(name.as_bytes()).unwrap(),
                            HeaderValue::from_bytes(value).unwrap(),
                        );
                    }
                    let res = app.send(r).await;
                    prop_assert_eq!(res.status(), StatusCode::OK);
                    let echoed: Vec<String> = res
                        .headers()
                        .get_all("x-step-up-required")
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .collect();
                    let seen = body_text(res).await;
                    prop_assert_eq!(&seen, want, "the handler saw {:?}", seen);
                    // The client is told a step-up is required, not which rule fired.
                    let on_response: Vec<&str> = if want.is_empty() {
                        vec![]
                    } else {
                        vec!["required"]
                    };
                    prop_assert_eq!(echoed, on_response);
                }
                Ok::<(), TestCaseError>(())
            })
        })
        .unwrap();
}
