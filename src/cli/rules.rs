//! `tower-siem rules`: check a rules file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::engine::RuleSet;

#[derive(Debug, Subcommand)]
pub(crate) enum RulesCommand {
    /// Validate a rules file: prints `ok` and the rule count, or the error with its line and field.
    Check {
        /// The TOML rules file.
        file: PathBuf,
    },
}

pub(crate) fn run(cmd: RulesCommand) -> ExitCode {
    match cmd {
        RulesCommand::Check { file } => {
            let (code, text) = check(&file);
            let _ = if code == ExitCode::SUCCESS {
                writeln!(std::io::stdout(), "{text}")
            } else {
                writeln!(std::io::stderr(), "{text}")
            };
            code
        }
    }
}

/// The report of `rules check` and its exit code: every error, one per line.
fn check(file: &std::path::Path) -> (ExitCode, String) {
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
        let n = RuleSet::from_toml(&text).map_or(0, |s| s.rules.len());
        return (
            ExitCode::SUCCESS,
            format!("{}: ok, {n} rules", file.display()),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_the_line_and_field_of_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(
            &path,
            "[[rule]]\nid = \"x\"\nkind = \"threshold\"\non = [\"auth.failure\"]\nkey = \"ip\"\ncount = \"many\"\nwindow = \"1m\"\nscore = 10\n",
        )
        .unwrap();
        let (code, text) = check(&path);
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
        let (code, out) = check(&path);
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
    fn check_accepts_the_builtin_pack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, RuleSet::default().to_toml()).unwrap();
        let (code, text) = check(&path);
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(text.contains("ok"), "{text}");
    }
}
