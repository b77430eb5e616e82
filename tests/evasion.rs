//! Detection of the built-in signature packs over an evasion corpus: payloads from public
//! collections (wfuzz, sqlmap; see `tests/corpus/README.md`) and hand-written ones, each put
//! through systematic transformations (`tests/support/tamper.rs`) and placed where an attacker
//! would: a query value, for traversal also the path, for Log4Shell also the user agent.
//!
//! `cargo test --test evasion -- --nocapture` prints detection per class and per
//! transformation, and the misses (`EVASION_MISSES=/tmp/misses.txt` writes all of them).
//! The goal (≥ 95 % per class) is asserted by `detection_per_class_meets_the_goal`.

#[path = "support/tamper.rs"]
mod tamper;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use tamper::{decode_line, escape, escape_line, tampers, Class, Out, Rng};
use tower_siem::signature::Inspector;

/// The goal per class, in percent.
const GOAL: f64 = 95.0;

/// Where a source's payloads go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spot {
    /// A query value, `GET /search?q=<payload>`.
    Query,
    /// A query value and the path (`/static/<payload>`).
    QueryAndPath,
    /// The path itself (the payload starts with `/`).
    PathOnly,
    /// A query value and the user agent.
    QueryAndAgent,
}

/// A corpus file: (class, source label, placement, content).
type Source = (Class, &'static str, Spot, &'static str);

/// The corpus files the packs were tuned on.
const SOURCES: &[Source] = &[
    (
        Class::Sqli,
        "wfuzz",
        Spot::Query,
        include_str!("corpus/evasion/sqli.wfuzz.txt"),
    ),
    (
        Class::Sqli,
        "sqlmap",
        Spot::Query,
        include_str!("corpus/evasion/sqli.sqlmap.txt"),
    ),
    (
        Class::Sqli,
        "hand",
        Spot::Query,
        include_str!("corpus/evasion/sqli.hand.txt"),
    ),
    (
        Class::Xss,
        "wfuzz",
        Spot::Query,
        include_str!("corpus/evasion/xss.wfuzz.txt"),
    ),
    (
        Class::Xss,
        "hand",
        Spot::Query,
        include_str!("corpus/evasion/xss.hand.txt"),
    ),
    (
        Class::Traversal,
        "wfuzz",
        Spot::QueryAndPath,
        include_str!("corpus/evasion/traversal.wfuzz.txt"),
    ),
    (
        Class::Traversal,
        "hand",
        Spot::QueryAndPath,
        include_str!("corpus/evasion/traversal.hand.txt"),
    ),
    (
        Class::Traversal,
        "hand-params",
        Spot::Query,
        include_str!("corpus/evasion/traversal_params.hand.txt"),
    ),
    (
        Class::Traversal,
        "hand-paths",
        Spot::PathOnly,
        include_str!("corpus/evasion/traversal_paths.hand.txt"),
    ),
    (
        Class::Cmdi,
        "wfuzz",
        Spot::Query,
        include_str!("corpus/evasion/cmdi.wfuzz.txt"),
    ),
    (
        Class::Cmdi,
        "hand",
        Spot::Query,
        include_str!("corpus/evasion/cmdi.hand.txt"),
    ),
    (
        Class::Ssti,
        "hand",
        Spot::Query,
        include_str!("corpus/evasion/ssti.hand.txt"),
    ),
    (
        Class::Log4shell,
        "hand",
        Spot::QueryAndAgent,
        include_str!("corpus/evasion/log4shell.hand.txt"),
    ),
];

/// Requests quoted in the issue, as sent: `class path?query` per line.
/// Payloads the packs were not tuned on when first measured (wapiti's attack files, boofuzz's
/// fuzz library; see `tests/corpus/README.md` and the README for what was tuned since), placed
/// as those tools put them: a query value.
const HELDOUT: &[Source] = &[
    (
        Class::Sqli,
        "wapiti",
        Spot::Query,
        include_str!("corpus/heldout/sqli.wapiti.txt"),
    ),
    (
        Class::Xss,
        "wapiti",
        Spot::Query,
        include_str!("corpus/heldout/xss.wapiti.txt"),
    ),
    (
        Class::Traversal,
        "wapiti",
        Spot::Query,
        include_str!("corpus/heldout/traversal.wapiti.txt"),
    ),
    (
        Class::Cmdi,
        "wapiti",
        Spot::Query,
        include_str!("corpus/heldout/cmdi.wapiti.txt"),
    ),
    (
        Class::Cmdi,
        "boofuzz",
        Spot::Query,
        include_str!("corpus/heldout/cmdi.boofuzz.txt"),
    ),
];

/// Detection on the held-out payloads, per class, that must not regress (percent). Measured,
/// not tuned for: see `report_heldout_detection`.
const HELDOUT_FLOOR: &[(Class, f64)] = &[
    (Class::Sqli, 99.5),
    (Class::Xss, 99.5),
    (Class::Traversal, 96.0),
    (Class::Cmdi, 95.0),
];

const ISSUE: &str = include_str!("corpus/evasion/issue.hand.txt");

/// One request of the corpus.
struct Case {
    class: Class,
    source: &'static str,
    /// `tamper@placement`.
    row: String,
    base: String,
    path: String,
    query: Option<String>,
    agent: Option<String>,
}

impl Case {
    fn show(&self) -> String {
        let mut s = self.path.clone();
        if let Some(q) = &self.query {
            s.push('?');
            s.push_str(q);
        }
        if let Some(ua) = &self.agent {
            let _ = write!(s, "  UA: {ua}");
        }
        s
    }
}

fn lines(content: &'static str) -> impl Iterator<Item = &'static str> {
    content.lines().filter(|l| !l.trim().is_empty())
}

fn issue_cases() -> Vec<Case> {
    lines(ISSUE)
        .map(|l| {
            let (class, target) = l.split_once(' ').expect("`class target`");
            let class = Class::from_name(class).unwrap_or_else(|| panic!("class in {l:?}"));
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                None => (target.to_owned(), None),
            };
            Case {
                class,
                source: "issue",
                row: "issue-example@as-sent".to_owned(),
                base: target.to_owned(),
                path,
                query,
                agent: None,
            }
        })
        .collect()
}

/// Every base payload of the tuning corpus under every transformation that applies, in every
/// placement, and the issue's examples.
fn cases() -> Vec<Case> {
    let mut out = cases_of(SOURCES);
    out.extend(issue_cases());
    out
}

/// Every base payload of `sources` under every transformation that applies, in every placement.
fn cases_of(sources: &[Source]) -> Vec<Case> {
    let tampers = tampers();
    let mut out = Vec::new();
    for &(class, source, spot, content) in sources {
        for line in lines(content) {
            let text = decode_line(line);
            for t in tampers.iter().filter(|t| t.classes.contains(&class)) {
                let mut rng = Rng::seeded(&text, t.name);
                let Some(result) = (t.apply)(&text, &mut rng) else {
                    continue;
                };
                let case = |row: &str, path: String, query: Option<String>, agent| Case {
                    class,
                    source,
                    row: format!("{}@{row}", t.name),
                    base: line.to_owned(),
                    path,
                    query,
                    agent,
                };
                let (wire, query) = match &result {
                    // As the source has it, its own escapes untouched.
                    Out::Text(_) if t.name == "plain" => (escape_line(line), None),
                    Out::Text(b) => (escape(b), None),
                    Out::Wire(w) => (w.clone(), None),
                    Out::Query(q) => (String::new(), Some(q.clone())),
                };
                if let Some(q) = query {
                    out.push(case("query", "/search".into(), Some(q), None));
                    continue;
                }
                if spot != Spot::PathOnly {
                    out.push(case(
                        "query",
                        "/search".into(),
                        Some(format!("q={wire}")),
                        None,
                    ));
                }
                let in_path = matches!(spot, Spot::QueryAndPath | Spot::PathOnly) && t.in_path;
                if in_path {
                    let path = match spot {
                        Spot::PathOnly => wire.clone(),
                        _ if wire.starts_with('/') => format!("/static{wire}"),
                        _ => format!("/static/{wire}"),
                    };
                    out.push(case("path", path, None, None));
                }
                if spot == Spot::QueryAndAgent {
                    // Literal text only: a header is not percent-decoded, so a line that is
                    // encoded on purpose (`$%7Bjndi`) means nothing there.
                    if let Out::Text(b) = &result {
                        let ua = format!(
                            "Mozilla/5.0 (X11; Linux x86_64) {}",
                            String::from_utf8_lossy(b)
                        );
                        if !ua.chars().any(char::is_control) && !b.contains(&b'%') {
                            out.push(case("user-agent", "/".into(), None, Some(ua)));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Whether the class's packs hit the case.
fn detected(inspector: &Inspector, case: &Case) -> bool {
    let hits = inspector.inspect(&case.path, case.query.as_deref(), case.agent.as_deref());
    hits.iter().any(|h| case.class.packs().contains(&&*h.pack))
}

#[derive(Default)]
struct Tally {
    hit: usize,
    total: usize,
}

impl Tally {
    fn pct(&self) -> f64 {
        if self.total == 0 {
            return 100.0;
        }
        100.0 * self.hit as f64 / self.total as f64
    }

    fn cell(&self) -> String {
        format!("{:>5}/{:<5} {:>5.1} %", self.hit, self.total, self.pct())
    }
}

struct Report {
    per_class: BTreeMap<Class, Tally>,
    per_row: BTreeMap<(Class, String), Tally>,
    per_source: BTreeMap<(Class, &'static str), Tally>,
    misses: Vec<String>,
    bases: BTreeMap<Class, usize>,
}

fn run() -> Report {
    run_on(SOURCES, cases())
}

fn run_on(sources: &[Source], cases: Vec<Case>) -> Report {
    let inspector = Inspector::builtin();
    let mut r = Report {
        per_class: BTreeMap::new(),
        per_row: BTreeMap::new(),
        per_source: BTreeMap::new(),
        misses: Vec::new(),
        bases: BTreeMap::new(),
    };
    for &(class, _, _, content) in sources {
        *r.bases.entry(class).or_default() += lines(content).count();
    }
    for case in cases {
        let ok = detected(&inspector, &case);
        for tally in [
            r.per_class.entry(case.class).or_default(),
            r.per_row.entry((case.class, case.row.clone())).or_default(),
            r.per_source.entry((case.class, case.source)).or_default(),
        ] {
            tally.total += 1;
            tally.hit += usize::from(ok);
        }
        if !ok {
            r.misses.push(format!(
                "{:<10} {:<28} {:<10} base {:?}\n    {}",
                case.class.name(),
                case.row,
                case.source,
                case.base,
                case.show()
            ));
        }
    }
    r
}

impl Report {
    fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{:<10} {:>6} {:>20}", "class", "bases", "detected/total");
        for (class, tally) in &self.per_class {
            let _ = writeln!(
                s,
                "{:<10} {:>6} {:>20}",
                class.name(),
                self.bases.get(class).copied().unwrap_or(0),
                tally.cell()
            );
        }
        s
    }

    fn table(&self) -> String {
        let mut s = String::new();
        for class in Class::ALL {
            let Some(total) = self.per_class.get(&class) else {
                continue;
            };
            let _ = writeln!(s, "\n## {}: {}", class.name(), total.cell());
            for ((c, source), tally) in &self.per_source {
                if *c == class {
                    let _ = writeln!(s, "  source {source:<26} {}", tally.cell());
                }
            }
            for ((c, row), tally) in &self.per_row {
                if *c == class {
                    let _ = writeln!(s, "  {row:<33} {}", tally.cell());
                }
            }
        }
        s
    }

    /// The misses, at most `per_row` for each class and transformation.
    fn some_misses(&self, per_row: usize) -> String {
        let mut shown: BTreeMap<String, usize> = BTreeMap::new();
        let mut s = String::new();
        let mut left = 0;
        for m in &self.misses {
            let key: String = m.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            let n = shown.entry(key).or_default();
            if *n < per_row {
                *n += 1;
                let _ = writeln!(s, "{m}");
            } else {
                left += 1;
            }
        }
        if left > 0 {
            let _ = writeln!(
                s,
                "... and {left} more (EVASION_MISSES=/path/to/file writes them all)"
            );
        }
        s
    }
}

#[test]
fn corpus_is_well_formed() {
    let all = cases();
    for class in Class::ALL {
        let bases: usize = SOURCES
            .iter()
            .filter(|s| s.0 == class)
            .map(|s| lines(s.3).count())
            .sum();
        assert!(
            bases >= 50,
            "only {bases} base payloads for {}",
            class.name()
        );
        let n = all.iter().filter(|c| c.class == class).count();
        assert!(n >= 5 * bases, "only {n} cases for {}", class.name());
    }
    // Every transformation is exercised.
    for t in tampers() {
        assert!(
            all.iter()
                .any(|c| c.row.starts_with(&format!("{}@", t.name))),
            "transformation {} never applies",
            t.name
        );
    }
    // The issue's examples are in the corpus, as sent or produced by a transformation.
    let issue: Vec<Case> = issue_cases();
    assert!(issue.len() >= 15);
    for needle in [
        "%2527",
        "%253B",
        "%257Bjndi",
        "/*!50000UNION*/",
        "1 AND 2=2",
        "jav&#x61;script:",
        "onscrollend=",
        "..%00/",
        ";id",
        "|id",
        "%0aid",
        ";w'h'o'am'i",
        "//pma/scripts/setup.php",
        "id=1/*&id=*/UNION/*&id=*/SELECT",
    ] {
        let raw = |c: &Case| {
            let mut s = format!("{}?{}", c.path, c.query.as_deref().unwrap_or(""));
            s.push_str(&c.base);
            s
        };
        assert!(
            issue.iter().chain(&all).any(|c| raw(c).contains(needle)
                || String::from_utf8_lossy(&decode_line(&raw(c))).contains(needle)),
            "{needle:?} is not in the corpus"
        );
    }
    // Deterministic: the same cases twice.
    let again = cases();
    assert_eq!(all.len(), again.len());
    assert!(all.iter().zip(&again).all(|(a, b)| a.show() == b.show()));
}

/// Not an assertion: the figures, for `-- --nocapture`.
#[test]
fn report_detection() {
    let r = run();
    println!("evasion corpus: detection per class\n{}", r.summary());
    println!("per source and per transformation@placement:{}", r.table());
    println!(
        "\nmisses ({} in all, 3 per transformation shown):\n{}",
        r.misses.len(),
        r.some_misses(3)
    );
    if let Ok(path) = std::env::var("EVASION_MISSES") {
        std::fs::write(&path, r.misses.join("\n") + "\n").unwrap();
        println!("all misses written to {path}");
    }
}

#[test]
fn issue_examples_are_detected() {
    let inspector = Inspector::builtin();
    let missed: Vec<String> = issue_cases()
        .iter()
        .filter(|c| !detected(&inspector, c))
        .map(|c| format!("{:<10} {}", c.class.name(), c.show()))
        .collect();
    assert!(
        missed.is_empty(),
        "issue examples missed:\n{}",
        missed.join("\n")
    );
}

#[test]
fn detection_per_class_meets_the_goal() {
    let r = run();
    let below: Vec<String> = r
        .per_class
        .iter()
        .filter(|(_, t)| t.pct() < GOAL)
        .map(|(c, t)| format!("{} {}", c.name(), t.cell()))
        .collect();
    assert!(
        below.is_empty(),
        "classes below {GOAL} %: {below:?}\n{}\n(run report_detection with --nocapture for the table)",
        r.summary()
    );
}

fn run_heldout() -> Report {
    run_on(HELDOUT, cases_of(HELDOUT))
}

/// Not an assertion: the held-out figures, for `-- --nocapture`.
#[test]
fn report_heldout_detection() {
    let r = run_heldout();
    println!(
        "held-out payloads (wapiti, boofuzz): detection per class\n{}",
        r.summary()
    );
    println!("per transformation@placement:{}", r.table());
    println!(
        "\nmisses ({} in all, 3 per transformation shown):\n{}",
        r.misses.len(),
        r.some_misses(3)
    );
    if let Ok(path) = std::env::var("HELDOUT_MISSES") {
        std::fs::write(&path, r.misses.join("\n") + "\n").unwrap();
        println!("all misses written to {path}");
    }
}

#[test]
fn heldout_detection_holds_its_floor() {
    let r = run_heldout();
    for &(class, floor) in HELDOUT_FLOOR {
        let tally = &r.per_class[&class];
        assert!(
            tally.total >= 50,
            "{}: only {} held-out cases",
            class.name(),
            tally.total
        );
        assert!(
            tally.pct() >= floor,
            "{} held out: {} below its floor {floor} %\n{}",
            class.name(),
            tally.cell(),
            r.summary()
        );
    }
}
