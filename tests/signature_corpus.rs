//! The built-in signature packs over a benign corpus (precision) and an attack corpus (recall).

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use support::corpus::{attack_requests, benign_requests, Req};
use tower_siem::signature::{Hit, Inspector};

fn inspect(inspector: &Inspector, req: &Req) -> Vec<Hit> {
    inspector.inspect(req.path(), req.query(), req.user_agent())
}

#[test]
fn benign_corpus_is_large_enough() {
    let benign = benign_requests();
    assert!(
        benign.len() >= 1_200,
        "only {} benign requests",
        benign.len()
    );
    let attacks = attack_requests();
    let inspector = Inspector::builtin();
    for id in inspector.pack_ids() {
        let n = attacks.iter().filter(|(pack, _)| *pack == id).count();
        assert!(n >= 10, "only {n} attack requests for {id}");
    }
}

#[test]
fn no_false_positives_on_benign_traffic() {
    let inspector = Inspector::builtin();
    let benign = benign_requests();
    let mut report = Vec::new();
    for req in &benign {
        for hit in inspect(&inspector, req) {
            report.push(format!(
                "{:<15} {:<10} sample={:?}\n    {} {}\n    UA: {}",
                hit.pack, hit.field, hit.sample, req.method, req.path_and_query, req.user_agent
            ));
        }
    }
    assert!(
        report.is_empty(),
        "{} false positives over {} benign requests:\n{}",
        report.len(),
        benign.len(),
        report.join("\n")
    );
}

#[test]
fn every_attack_hits_its_pack() {
    let inspector = Inspector::builtin();
    let mut recall: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut missed = Vec::new();
    for (pack, req) in attack_requests() {
        let hits = inspect(&inspector, &req);
        let entry = recall.entry(pack).or_default();
        entry.1 += 1;
        if hits.iter().any(|h| &*h.pack == pack) {
            entry.0 += 1;
        } else {
            let got: Vec<&str> = hits.iter().map(|h| &*h.pack).collect();
            missed.push(format!(
                "{pack:<15} missed {} (UA: {}); got {got:?}",
                req.path_and_query, req.user_agent
            ));
        }
    }
    if !missed.is_empty() {
        let summary: Vec<String> = recall
            .iter()
            .map(|(pack, (hit, total))| format!("{pack:<15} {hit}/{total}"))
            .collect();
        panic!(
            "recall per pack:\n{}\n\nmissed:\n{}",
            summary.join("\n"),
            missed.join("\n")
        );
    }
}

/// Not an assertion: prints what a benign request costs, for `--release --nocapture` runs.
#[test]
fn report_benign_cost() {
    let inspector = Inspector::builtin();
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    let iterations = if cfg!(debug_assertions) {
        1_000
    } else {
        200_000
    };
    for _ in 0..1_000 {
        std::hint::black_box(inspector.inspect(
            "/api/products/42",
            Some("page=2&sort=price"),
            Some(ua),
        ));
    }
    let start = std::time::Instant::now();
    for _ in 0..iterations {
        let hits = inspector.inspect(
            std::hint::black_box("/api/products/42"),
            std::hint::black_box(Some("page=2&sort=price")),
            std::hint::black_box(Some(ua)),
        );
        assert!(hits.is_empty());
    }
    let per = start.elapsed() / iterations;
    println!("inspect(benign): {per:?} per request over {iterations} iterations");

    let benign = benign_requests();
    let start = std::time::Instant::now();
    let rounds = if cfg!(debug_assertions) { 1 } else { 50 };
    for _ in 0..rounds {
        for req in &benign {
            std::hint::black_box(inspect(&inspector, req));
        }
    }
    let per = start.elapsed() / (rounds * benign.len() as u32);
    println!(
        "inspect(benign corpus, {} requests): {per:?} per request",
        benign.len()
    );
}

proptest! {
    #[test]
    fn inspect_never_panics(path in "\\PC*", query in proptest::option::of("\\PC*"), ua in proptest::option::of("\\PC*")) {
        let inspector = Inspector::builtin();
        for hit in inspector.inspect(&path, query.as_deref(), ua.as_deref()) {
            prop_assert!(hit.sample.chars().count() <= 80);
        }
    }

    #[test]
    fn inspect_never_panics_on_encoded_soup(
        path in "(/|%|%2|%25|%c0|%ae|%u|%u00|\\.|\\\\|\\+|[a-z0-9]|\\$\\{|\\}|'|<|;|\\|)*",
        query in "(%|%2|%25|%c0%ae|%u002e|%uff0e|\\+|=|&|[a-z]|'|\"|\\(|\\)|\\{\\{|\\}\\})*",
    ) {
        let inspector = Inspector::builtin();
        for hit in inspector.inspect(&path, Some(&query), None) {
            prop_assert!(hit.sample.chars().count() <= 80);
        }
    }

    /// The canonical views (repeated percent layers, entities, full-width and overlong forms,
    /// SQL comments, shell quoting, dot segments, repeated parameters) on soup made of their
    /// own trigger bytes.
    #[test]
    fn inspect_never_panics_on_canonicalisation_soup(
        path in "(/|//|\\.|\\.\\.|\\.\\.;|%00|%25|%2525|%c0|%e0%80|%ef%bc|&#x?|&#0|&[a-z]{2,6};|[a-z0-9]|'|\"|\\\\|\\^|\\$@|\\$\\(\\)|/\\*|\\*/|/\\*!|#|--|%0a|%a0|\\|)*",
        query in "(&|=|id=|id|%26|&#|&#x|%26%23|;|%3B|[0-9a-f]|x|/\\*!?|\\*/|%23|--|%0a|%a0|'|\"|\\\\|\\$@|\\.\\./|/|%25|%ef%bc%87|%c0%a7)*",
        ua in proptest::option::of("(/\\*|'|\"|&#|%|;|\\.\\./|[a-z])*"),
    ) {
        let inspector = Inspector::builtin();
        for hit in inspector.inspect(&path, Some(&query), ua.as_deref()) {
            prop_assert!(hit.sample.chars().count() <= 80);
        }
    }
}
