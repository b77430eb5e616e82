//! `tower-siem rules`: check a rules file, show the built-in pack.
//!
//! A rules file extends the built-in pack (see [`RuleSet`]): `check` validates the resulting
//! set and prints, per rule and in total, the most memory its per-key state may take. `show`
//! prints the built-in pack, as shipped or as a table.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::engine::RuleSet;

#[derive(Debug, Subcommand)]
pub(crate) enum RulesCommand {
    /// Validate a rules file: prints `ok`, the rule count and the memory the rules' per-key
    /// state may take (per rule and in total), or every rule's errors with their line and
    /// field (a TOML syntax error ends the reading: only the first one is shown). The file
    /// extends the built-in pack unless it sets `builtin = false`.
    Check {
        /// The TOML rules file.
        file: PathBuf,
        /// Keys each rule keeps state for (the engine's `window_capacity`), for the memory
        /// estimate.
        #[arg(long, default_value_t = crate::engine::EngineConfig::default().window_capacity)]
        keys: usize,
    },
    /// Print the built-in rule pack: its TOML as shipped (a starting point for a rules file),
    /// or one line per rule with `--format table`.
    Show {
        /// `toml` or `table`.
        #[arg(long, value_enum, default_value_t = ShowFormat::Toml)]
        format: ShowFormat,
    },
}

/// How `rules show` prints the pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ShowFormat {
    /// The TOML file as shipped.
    Toml,
    /// One line per rule: id, kind, events, key, count, window, score.
    Table,
}

pub(crate) fn run(cmd: RulesCommand) -> ExitCode {
    match cmd {
        RulesCommand::Check { file, keys } => {
            let (code, text) = check(&file, keys);
            let _ = if code == ExitCode::SUCCESS {
                writeln!(std::io::stdout(), "{text}")
            } else {
                writeln!(std::io::stderr(), "{text}")
            };
            code
        }
        RulesCommand::Show { format } => {
            let text = show(format);
            match write!(std::io::stdout(), "{text}") {
                Ok(()) => ExitCode::SUCCESS,
                // A closed pipe (`| head`) is not worth a message.
                Err(_) => ExitCode::FAILURE,
            }
        }
    }
}

/// The built-in pack as `rules show` prints it.
fn show(format: ShowFormat) -> String {
    match format {
        ShowFormat::Toml => crate::engine::DEFAULT_RULES.to_owned(),
        ShowFormat::Table => table(&RuleSet::default()),
    }
}

/// One line per rule under a header: id, kind, events (or pack), key, count, window, score.
fn table(set: &RuleSet) -> String {
    let rows: Vec<[String; 7]> = set
        .rules
        .iter()
        .map(|r| {
            let on = match (&r.pack, r.on.is_empty()) {
                (Some(p), true) => format!("pack {p}"),
                _ => r.on.join(","),
            };
            [
                r.id.clone(),
                format!("{:?}", r.kind).to_lowercase(),
                on,
                r.key
                    .map_or_else(|| "-".to_owned(), |k| format!("{k:?}").to_lowercase()),
                r.count.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                r.window.map_or_else(|| "-".to_owned(), |w| w.to_string()),
                r.score.map_or_else(|| "-".to_owned(), |s| format!("{s}")),
            ]
        })
        .collect();
    let header = ["id", "kind", "on", "key", "count", "window", "score"].map(str::to_owned);
    let mut width = [0usize; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(width)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The report of `rules check` and its exit code: every error, one per line; or `ok`, the
/// rules, and the memory their per-key state may take with `keys` keys per rule.
fn check(file: &std::path::Path, keys: usize) -> (ExitCode, String) {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            return (
                ExitCode::FAILURE,
                format!("{}: cannot read: {e}", file.display()),
            )
        }
    };
    let errors = RuleSet::check_toml(&text);
    if errors.is_empty() {
        return match RuleSet::from_toml(&text) {
            Ok(set) => (ExitCode::SUCCESS, report(file, &set, keys)),
            Err(e) => (
                ExitCode::FAILURE,
                format!("{}: {e}\n1 error", file.display()),
            ),
        };
    }
    let mut out: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {e}", file.display()))
        .collect();
    out.push(format!(
        "{} error{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    ));
    (ExitCode::FAILURE, out.join("\n"))
}

/// `ok`, the counts, then one line per rule with its kind, state and memory, and the total.
fn report(file: &std::path::Path, set: &RuleSet, keys: usize) -> String {
    let n = set.rules.len();
    let active = set.rules.iter().filter(|r| r.is_active()).count();
    let shadow = set.rules.iter().filter(|r| r.enabled && r.shadow).count();
    let disabled = set.rules.iter().filter(|r| !r.enabled).count();
    let mut out = format!(
        "{}: ok, {n} rule{} ({active} active, {shadow} shadow, {disabled} disabled)\n\
         memory for per-key rule state at most, with {keys} keys per rule:\n",
        file.display(),
        if n == 1 { "" } else { "s" },
    );
    let width = set
        .rules
        .iter()
        .map(|r| r.id.len())
        .max()
        .unwrap_or(0)
        .max(5);
    for r in &set.rules {
        let state = if !r.enabled {
            "disabled".to_owned()
        } else if r.memory_estimate(keys) == 0 {
            "no per-key state".to_owned()
        } else {
            format!("{} per key", human(r.state_bytes_per_key()))
        };
        out.push_str(&format!(
            "  {:<width$}  {:<9}  {:>10}  {state}\n",
            r.id,
            format!("{:?}", r.kind).to_lowercase(),
            human(r.memory_estimate(keys)),
        ));
    }
    out.push_str(&format!(
        "  {:<width$}  {:<9}  {:>10}",
        "total",
        "",
        human(set.memory_estimate(keys))
    ));
    out
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `12.0 MiB`, `3.2 GiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_prints_the_built_in_pack_and_check_accepts_it() {
        let text = show(ShowFormat::Toml);
        assert_eq!(RuleSet::from_toml(&text).unwrap(), RuleSet::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("builtin.toml");
        std::fs::write(&path, &text).unwrap();
        let (code, report) = check(&path, 65_536);
        assert_eq!(code, ExitCode::SUCCESS, "{report}");
        assert!(report.contains(": ok, "), "{report}");
        // The table: a header and one line per rule, each naming its id.
        let table = show(ShowFormat::Table);
        let set = RuleSet::default();
        assert_eq!(table.lines().count(), set.rules.len() + 1);
        assert!(table.starts_with("id "), "{table}");
        for r in &set.rules {
            assert!(
                table.lines().any(|l| l.starts_with(&format!("{} ", r.id))),
                "{}",
                r.id
            );
        }
    }

    #[test]
    fn check_names_the_line_and_field_of_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(
            &path,
            "[[rule]]\nid = \"x\"\nkind = \"threshold\"\non = [\"auth.failure\"]\nkey = \"ip\"\ncount = \"many\"\nwindow = \"1m\"\nscore = 10\n",
        )
        .unwrap();
        let (code, text) = check(&path, 65_536);
        assert_eq!(code, ExitCode::FAILURE);
        assert!(text.contains("line 6"), "{text}");
        assert!(text.contains("count"), "{text}");
    }

    #[test]
    fn check_reports_every_bad_rule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        let good = "[[rule]]\nid = \"ok\"\nkind = \"threshold\"\non = [\"auth.failure\"]\nkey = \"ip\"\ncount = 3\nwindow = \"1m\"\nscore = 10\n";
        let text = format!(
            "{good}\n[[rule]]\nid = \"neg\"\nkind = \"threshold\"\non = [\"auth.failure\"]\nkey = \"ip\"\ncount = 3\nwindow = \"1m\"\nscore = -5\n\n\
             [[rule]]\nid = \"nokey\"\nkind = \"distinct\"\non = [\"auth.failure\"]\ncount = 3\nwindow = \"1m\"\nscore = 1\n\n{}",
            good
        );
        std::fs::write(&path, text).unwrap();
        let (code, out) = check(&path, 65_536);
        assert_eq!(code, ExitCode::FAILURE);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(
            lines[0].contains("line 17")
                && lines[0].contains("`neg`")
                && lines[0].contains("score"),
            "{out}"
        );
        assert!(
            lines[1].contains("`nokey`") && lines[1].contains("key"),
            "{out}"
        );
        assert!(
            lines[2].contains("duplicate rule id `ok`") && lines[2].contains("line 27"),
            "{out}"
        );
        assert_eq!(lines[3], "3 errors");
    }

    #[test]
    fn check_prints_the_memory_per_rule_and_in_total() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        // The built-in pack, one rule made much bigger, one switched off.
        std::fs::write(
            &path,
            "[[rule]]\nid = \"auth.bruteforce.ip.slow\"\ncount = 10000\n\n\
             [[rule]]\nid = \"sig.xss\"\nenabled = false\n",
        )
        .unwrap();
        let (code, out) = check(&path, 65_536);
        assert_eq!(code, ExitCode::SUCCESS, "{out}");
        let set = RuleSet::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let n = set.rules.len();
        assert!(
            out.lines().next().unwrap().ends_with(&format!(
                "ok, {n} rules ({} active, 0 shadow, 1 disabled)",
                n - 2
            )),
            "{out}"
        );
        assert!(out.contains("with 65536 keys per rule"), "{out}");
        let line = |id: &str| {
            out.lines()
                .find(|l| l.split_whitespace().next() == Some(id))
                .unwrap_or_else(|| panic!("no line for {id}: {out}"))
                .to_owned()
        };
        // 10,000 timestamps of 8 bytes per key, 65,536 keys: about 5 GiB.
        let slow = line("auth.bruteforce.ip.slow");
        assert!(
            slow.contains("threshold") && slow.contains("4.9 GiB"),
            "{slow}"
        );
        assert!(slow.contains("78.1 KiB per key"), "{slow}");
        assert!(line("sig.xss").contains("disabled"), "{out}");
        assert!(line("sig.sqli").contains("0 B"), "{out}");
        let total = line("total");
        assert!(
            total.ends_with(&human(set.memory_estimate(65_536))),
            "{total}"
        );
        assert!(total.contains("GiB"), "{total}");
        // Fewer keys, less memory.
        let (_, small) = check(&path, 1024);
        assert!(small.contains("with 1024 keys per rule"), "{small}");
        assert!(!small.contains("GiB"), "{small}");
    }

    #[test]
    fn check_refuses_what_would_switch_detection_off_or_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        // The novelty rule: a 32 GB allocation on the first failed login.
        std::fs::write(
            &path,
            "[[rule]]\nid = \"auth.takeover\"\nafter = { on = [\"auth.failure\"], count = 4000000000, window = \"1h\" }\n",
        )
        .unwrap();
        let (code, out) = check(&path, 65_536);
        assert_eq!(code, ExitCode::FAILURE, "{out}");
        assert!(
            out.contains("line 3") && out.contains("after.count") && out.contains("1 to 10000"),
            "{out}"
        );
        // No active rule.
        std::fs::write(&path, "builtin = false\n").unwrap();
        let (code, out) = check(&path, 65_536);
        assert_eq!(code, ExitCode::FAILURE, "{out}");
        assert!(out.contains("no active rule"), "{out}");
        assert!(out.ends_with("1 error"), "{out}");
        // An empty file is the built-in pack.
        std::fs::write(&path, "").unwrap();
        let (code, out) = check(&path, 65_536);
        assert_eq!(code, ExitCode::SUCCESS, "{out}");
        let n = RuleSet::default().rules.len();
        assert!(out.contains(&format!("ok, {n} rules")), "{out}");
    }

    #[test]
    fn human_units() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 << 30), "5.0 GiB");
    }

    #[test]
    fn check_accepts_the_builtin_pack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, RuleSet::default().to_toml()).unwrap();
        let (code, text) = check(&path, 65_536);
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(text.contains("ok"), "{text}");
        assert!(text.contains("total"), "{text}");
    }
}
