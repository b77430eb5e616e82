//! Verdicts that hold under attack: a block that others' traffic cannot evict, networks blocked
//! as a whole, repeated headers, bounded scores, weak evidence that never denies on its own,
//! and a step-up header that does not tell the client which rule fired.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use common::{req, TestApp};
use tower_siem::engine::{EntityKey, RuleConfig, RuleKind};
use tower_siem::signature::{Field, Pack};
use tower_siem::{Action, Event, RuleSet, Subject};

const SQLMAP: &str = "sqlmap/1.7.2#stable (https://sqlmap.org)";

/// 127.0.0.0/8 minus 127.9.9.9, one address each.
fn loopback(i: u32) -> String {
    Ipv4Addr::from(0x7f10_0000 + i).to_string()
}

#[tokio::test]
async fn a_block_survives_churn_from_other_addresses() {
    // A small store, so the churn fits in the normal suite: 150,000 addresses against 100,000
    // entries is the same ratio as 1,500 against 1,000.
    let app = TestApp::with(|b| b.entity_capacity(1_000), |l| l);
    let blocked = app.get_ua("127.9.9.9", "/", SQLMAP).await;
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);
    for i in 0..3_000 {
        let res = app.get(&loopback(i), "/search?q=%3Cscript%3E").await;
        assert_ne!(
            res.status(),
            StatusCode::FORBIDDEN,
            "one probe is not a block"
        );
        if i % 500 == 0 {
            app.siem.engine().store().sync();
        }
    }
    app.siem.engine().store().sync();
    let res = app.get("127.9.9.9", "/").await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "the blocked client came back after others' churn"
    );
    let stats = app.siem.stats().engine;
    assert!(stats.entities <= stats.entity_capacity, "{stats:?}");
    assert!(stats.decisions.held >= 1, "{stats:?}");
}

#[tokio::test]
async fn decisions_stay_bounded_and_operator_blocks_go_last() {
    let app = TestApp::with(|b| b.entity_capacity(1_000).decision_capacity(50), |l| l);
    // An operator's block ranks above any automatic one.
    let admin = EntityKey::Ip("198.51.100.7".parse().unwrap());
    app.siem.block(&admin, Duration::from_secs(3_600));
    for i in 0..400 {
        app.clock.advance(Duration::from_millis(10));
        let res = app.get_ua(&loopback(i), "/", SQLMAP).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let stats = app.siem.stats().engine;
    assert!(stats.decisions.held <= 50, "{:?}", stats.decisions);
    assert!(
        stats.decisions.evicted >= 350,
        "drops are counted: {:?}",
        stats.decisions
    );
    let res = app.get("198.51.100.7", "/").await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "operator block evicted"
    );
    // The latest automatic blocks, which end last, are the ones kept.
    let res = app.get(&loopback(399), "/").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_network_is_blocked_after_three_of_its_addresses() {
    let app = TestApp::new();
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(
            app.get_ua(ip, "/", SQLMAP).await.status(),
            StatusCode::FORBIDDEN
        );
    }
    // A fourth address of the /24, with an innocent user agent: blocked by its network.
    let res = app.get("203.0.113.77", "/").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let v = app
        .siem
        .verdict_for(&Subject::ip("203.0.113.200".parse().unwrap()));
    assert_eq!(v.action, Action::Block);
    assert!(v.reasons.iter().any(|r| r == "subnet.escalation"), "{v:?}");
    // The neighbouring /24 is untouched.
    assert_eq!(app.get("203.0.114.1", "/").await.status(), StatusCode::OK);
    let net = EntityKey::parse("net:203.0.113.0/24").unwrap();
    assert!(app.siem.explain(&net).is_some());
    app.siem.unblock(&net);
    assert_eq!(app.get("203.0.113.77", "/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_ipv6_attacker_rotating_through_a_48_gains_nothing() {
    let app = TestApp::new();
    for i in 0..3u16 {
        let ip = Ipv6Addr::new(0x2001, 0xdb8, 0x42, i, 0, 0, 0, 1).to_string();
        assert_eq!(
            app.get_ua(&ip, "/", SQLMAP).await.status(),
            StatusCode::FORBIDDEN
        );
    }
    let fresh = Ipv6Addr::new(0x2001, 0xdb8, 0x42, 0x99, 0, 0, 0, 1).to_string();
    assert_eq!(app.get(&fresh, "/").await.status(), StatusCode::FORBIDDEN);
    let other = Ipv6Addr::new(0x2001, 0xdb8, 0x43, 0, 0, 0, 0, 1).to_string();
    assert_eq!(app.get(&other, "/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn allow_listed_networks_are_never_escalated_or_scored() {
    let app = TestApp::with(|b| b.allow_networks(["203.0.113.0/25"]).unwrap(), |l| l);
    // Inside the allow-list: an attack tool is still not acted on by address.
    assert_eq!(
        app.get_ua("203.0.113.5", "/", SQLMAP).await.status(),
        StatusCode::OK
    );
    // Three blocked addresses in the other half of the /24: the /24 overlaps the allow-list,
    // so it is not escalated.
    for ip in ["203.0.113.201", "203.0.113.202", "203.0.113.203"] {
        assert_eq!(
            app.get_ua(ip, "/", SQLMAP).await.status(),
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(app.get("203.0.113.204", "/").await.status(), StatusCode::OK);
    assert!(tower_siem::Siem::builder()
        .allow_networks(["not a network"])
        .is_err());
}

#[tokio::test]
async fn a_second_user_agent_cannot_hide_an_attack_tool() {
    let app = TestApp::new();
    let mut r = req("GET", "/", "192.0.2.10").body(Body::empty()).unwrap();
    r.headers_mut()
        .insert("user-agent", "Mozilla/5.0".parse().unwrap());
    r.headers_mut()
        .append("user-agent", SQLMAP.parse().unwrap());
    let calls = app.calls();
    let res = app.send(r).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.calls(), calls, "the handler did not run");
}

#[tokio::test]
async fn a_repeated_singleton_header_is_a_signal() {
    let app = TestApp::new();
    let mut r = req("GET", "/", "192.0.2.11").body(Body::empty()).unwrap();
    r.headers_mut()
        .append("host", "shop.example".parse().unwrap());
    r.headers_mut()
        .append("host", "internal.example".parse().unwrap());
    let res = app.send(r).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-step-up-required"));
    let v = app
        .siem
        .verdict_for(&Subject::ip("192.0.2.11".parse().unwrap()));
    assert_eq!(v.action, Action::StepUp);
    assert_eq!(v.reasons, ["sig.duplicate_header"]);
    // Repeated headers that HTTP allows (Accept, Cookie in HTTP/2) are not.
    let mut r = req("GET", "/", "192.0.2.12").body(Body::empty()).unwrap();
    r.headers_mut()
        .append("accept", "text/html".parse().unwrap());
    r.headers_mut().append("accept", "*/*".parse().unwrap());
    r.headers_mut().append("cookie", "a=1".parse().unwrap());
    r.headers_mut().append("cookie", "b=2".parse().unwrap());
    let res = app.send(r).await;
    assert!(!res.headers().contains_key("x-step-up-required"));
}

#[tokio::test]
async fn scores_have_a_ceiling_so_recovery_time_is_bounded() {
    let app = TestApp::new();
    for _ in 0..200 {
        app.clock.advance(Duration::from_secs(2));
        app.siem.fire(Event::new("auth.failure").user("victim"));
    }
    let v = app.siem.verdict_for(&Subject::user("victim"));
    let max = app.siem.engine().scoring().max_score;
    assert!(v.score <= max, "score {} above the ceiling {max}", v.score);
    assert_eq!(v.action, Action::StepUp);
    // half_life × log2(max_score / step_up) = 15 min × log2(200 / 30) ≈ 41 min.
    app.clock.advance(Duration::from_secs(42 * 60));
    let v = app.siem.verdict_for(&Subject::user("victim"));
    assert_eq!(v.action, Action::Allow, "{v:?}");
    // Offenders show the same scale.
    for _ in 0..50 {
        app.siem.fire(Event::new("auth.failure").user("victim"));
    }
    assert!(app.siem.offenders().iter().all(|o| o.verdict.score <= max));
}

/// Three weak-only packs (no strong pattern): what a person's search box can trip.
fn weak_rules() -> RuleSet {
    let mut rules = RuleSet::default();
    for (id, pattern) in [("w1", "weak-one"), ("w2", "weak-two"), ("w3", "weak-three")] {
        rules.packs.push(Pack {
            id: id.into(),
            fields: vec![Field::Query],
            patterns: vec![],
            literals: vec![],
            weak: vec![pattern.into()],
            tokeniser: None,
        });
        let mut r = RuleConfig::new(format!("sig.{id}"), RuleKind::Signature);
        r.pack = Some(id.into());
        r.score = Some(40.0);
        rules = rules.with_rule(r);
    }
    rules
}

#[tokio::test]
async fn weak_evidence_alone_never_denies() {
    let app = TestApp::with(|b| b.rules(weak_rules()), |l| l);
    for _ in 0..10 {
        let res = app.get("192.0.2.20", "/search?q=weak-one").await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let v = app
        .siem
        .verdict_for(&Subject::ip("192.0.2.20".parse().unwrap()));
    assert_eq!(v.action, Action::StepUp, "{v:?}");
    // Two weak classes are still a person's bad luck.
    let res = app.get("192.0.2.20", "/search?q=weak-two").await;
    assert_eq!(res.status(), StatusCode::OK);
    // Three classes corroborate each other: a scanner spraying payloads.
    let res = app.get("192.0.2.20", "/search?q=weak-three").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn weak_evidence_counts_once_corroborated_by_a_strong_signal() {
    let app = TestApp::with(|b| b.rules(weak_rules()), |l| l);
    for _ in 0..3 {
        app.get("192.0.2.21", "/search?q=weak-one").await;
    }
    // A strong SQL injection probe on top: the weak evidence counts in full.
    let res = app
        .get(
            "192.0.2.21",
            "/search?q=1%27+UNION+SELECT+password+FROM+users--",
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_client_is_not_told_which_rule_fired() {
    let app = TestApp::new();
    let res = app.get("192.0.2.30", "/echo?q=%3Cscript%3E").await;
    assert_eq!(
        res.headers()["x-step-up-required"],
        "required",
        "no rule id on the response"
    );
    // The handler still sees the rule ids.
    let res = app.get("192.0.2.30", "/echo").await;
    assert_eq!(common::body_text(res).await, "sig.xss");

    let app = TestApp::with(|b| b, |l| l.step_up_header_reasons(true));
    let res = app.get("192.0.2.31", "/echo?q=%3Cscript%3E").await;
    assert_eq!(res.headers()["x-step-up-required"], "sig.xss");
}

#[test]
fn network_keys_round_trip_through_text() {
    let k = EntityKey::parse("net:2001:db8:42::/48").unwrap();
    assert_eq!(k.to_string(), "net:2001:db8:42::/48");
    // Host bits are dropped.
    assert_eq!(
        EntityKey::parse("net:203.0.113.9/24").unwrap().to_string(),
        "net:203.0.113.0/24"
    );
    let _: IpAddr = "203.0.113.9".parse().unwrap();
}

// ---- What an attacker who reads this source would try, and what a person would hit ----------

#[tokio::test]
async fn a_blocked_address_in_ipv4_mapped_ipv6_form_is_still_blocked() {
    // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d: the block and the network
    // escalation must hold for that spelling too.
    let app = TestApp::new();
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        app.get_ua(ip, "/", SQLMAP).await;
    }
    assert_eq!(
        app.get("::ffff:203.0.113.1", "/").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("::ffff:203.0.113.99", "/").await.status(),
        StatusCode::FORBIDDEN,
        "the escalated network, reached through the mapped form"
    );
}

#[tokio::test]
async fn an_attack_tool_in_the_third_user_agent_is_found() {
    let app = TestApp::new();
    let mut r = req("GET", "/", "192.0.2.13").body(Body::empty()).unwrap();
    r.headers_mut()
        .insert("user-agent", "Mozilla/5.0".parse().unwrap());
    r.headers_mut()
        .append("user-agent", "Mozilla/5.0 (X11)".parse().unwrap());
    r.headers_mut()
        .append("user-agent", SQLMAP.parse().unwrap());
    assert_eq!(app.send(r).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_probe_repeated_after_its_first_hit_counts_in_full() {
    // The first-hit rule must not let an attacker probe forever at step-up: the second and
    // third injection probes throttle and then block, as before.
    let app = TestApp::new();
    let probe = "/search?q=1%27+UNION+SELECT+password+FROM+users--";
    assert_eq!(app.get("192.0.2.40", probe).await.status(), StatusCode::OK);
    assert_eq!(
        app.get("192.0.2.40", probe).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    app.get("192.0.2.40", probe).await;
    let v = app
        .siem
        .verdict_for(&Subject::ip("192.0.2.40".parse().unwrap()));
    assert_eq!(v.action, Action::Block, "{v:?}");
}

#[tokio::test]
async fn one_odd_search_tags_only_its_own_request() {
    // A developer searching for a template expression once: that request may be tagged, the
    // next page is not.
    let app = TestApp::new();
    let res = app
        .get("192.0.2.41", "/search?q=%7B%7B7*7%7D%7D+meaning")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-step-up-required"));
    app.clock.advance(Duration::from_secs(5));
    let res = app.get("192.0.2.41", "/products/42").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        !res.headers().contains_key("x-step-up-required"),
        "the person's next page is not tagged"
    );
}

#[tokio::test]
async fn a_neighbour_of_one_blocked_address_is_not_blocked() {
    // Escalation needs three blocked addresses: two attackers behind a carrier's shared /24
    // do not lock out everyone else on it.
    let app = TestApp::new();
    for ip in ["198.51.100.1", "198.51.100.2"] {
        app.get_ua(ip, "/", SQLMAP).await;
    }
    assert_eq!(app.get("198.51.100.77", "/").await.status(), StatusCode::OK);
}

/// A password guesser cannot reset its count by churn: three failed logins on one account,
/// then 50,000 failures on other accounts from other addresses (far more keys than the rules'
/// windows hold), then the fourth: the brute-force rule still fires on it.
#[test]
fn a_flood_of_other_keys_does_not_reset_a_guessers_window() {
    let siem = tower_siem::Siem::builder()
        .window_capacity(2_000)
        .build()
        .unwrap();
    let attacker = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 66));
    for _ in 0..3 {
        siem.fire(Event::new("auth.failure").user("alice").ip(attacker));
    }
    for i in 0..50_000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        siem.fire(Event::new("auth.failure").user(format!("other{i}")).ip(ip));
    }
    let evictions = siem.stats().engine.window_evictions;
    assert!(
        evictions > 40_000,
        "the flood evicted only {evictions} windows"
    );
    siem.fire(Event::new("auth.failure").user("alice").ip(attacker));
    let alice = siem
        .explain(&EntityKey::User("alice".into()))
        .expect("the fourth failure scored alice");
    assert!(
        alice
            .contributions
            .iter()
            .any(|c| &*c.rule == "auth.bruteforce.user"),
        "{alice:?}"
    );
}
