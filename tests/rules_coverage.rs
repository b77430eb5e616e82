//! Built-in rules and keying options that no other test reaches: second-factor guessing,
//! password-reset and sign-up abuse, each at its threshold and one short of it, and
//! `ipv6_prefix`, which decides which addresses count as one client.

use std::net::IpAddr;

use tower_siem::{Action, Event, Siem};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `count` events named `name` from `from`; the verdict after each.
fn fire_from(siem: &Siem, name: &'static str, from: &[IpAddr]) -> Vec<tower_siem::Verdict> {
    from.iter()
        .map(|&a| siem.fire(Event::new(name).ip(a)))
        .collect()
}

#[test]
fn abuse_rules_step_up_at_their_threshold_and_not_before() {
    // Each: 5 events from one address within its window, score 30 (the step-up threshold).
    for (name, rule) in [
        ("mfa.failure", "mfa.bruteforce"),
        ("account.password_reset", "account.reset_abuse"),
        ("account.create", "account.signup_abuse"),
    ] {
        let siem = Siem::builder().build().unwrap();
        let client = ip("198.51.100.9");
        let verdicts = fire_from(&siem, name, &[client; 5]);
        for (k, v) in verdicts[..4].iter().enumerate() {
            assert_eq!(v.action, Action::Allow, "{name} #{}: {v:?}", k + 1);
            assert!(!v.reasons.iter().any(|r| r == rule), "{name} #{}", k + 1);
        }
        let v = &verdicts[4];
        assert_eq!(v.action, Action::StepUp, "{name} #5: {v:?}");
        assert!(v.reasons.iter().any(|r| r == rule), "{name} #5: {v:?}");
        // Another address is not affected.
        let other = siem.fire(Event::new(name).ip(ip("198.51.100.10")));
        assert_eq!(other.action, Action::Allow, "{name}: {other:?}");
    }
}

#[test]
fn ipv6_prefix_decides_which_addresses_are_one_client() {
    // Five second-factor failures from two /64s of one /56.
    let from: Vec<IpAddr> = ["2001:db8:0:10::1", "2001:db8:0:11::1"]
        .iter()
        .cycle()
        .take(5)
        .map(|s| ip(s))
        .collect();

    // Keyed by /64 (the default): two clients, neither at the threshold.
    let siem = Siem::builder().build().unwrap();
    assert_ne!(siem.engine().ip_key(from[0]), siem.engine().ip_key(from[1]));
    let last = fire_from(&siem, "mfa.failure", &from).pop().unwrap();
    assert_eq!(last.action, Action::Allow, "{last:?}");

    // Keyed by /56: one client, stepped up at the 5th.
    let siem = Siem::builder().ipv6_prefix(56).unwrap().build().unwrap();
    assert_eq!(siem.engine().ip_key(from[0]), ip("2001:db8::"));
    assert_eq!(siem.engine().ip_key(from[0]), siem.engine().ip_key(from[1]));
    let last = fire_from(&siem, "mfa.failure", &from).pop().unwrap();
    assert_eq!(last.action, Action::StepUp, "{last:?}");
    assert!(last.reasons.iter().any(|r| r == "mfa.bruteforce"));

    // A prefix outside 1..=128 is refused.
    assert!(Siem::builder().ipv6_prefix(0).is_err());
    assert!(Siem::builder().ipv6_prefix(129).is_err());
}
