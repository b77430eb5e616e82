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

/// The report of `rules check` and its exit code.
fn check(file: &std::path::Path) -> (ExitCode, String) {
    match RuleSet::from_file(file) {
        Ok(set) => (
            ExitCode::SUCCESS,
            format!("{}: ok, {} rules", file.display(), set.rules.len()),
        ),
        Err(e) => (ExitCode::FAILURE, format!("{}: {e}", file.display())),
    }
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
    fn check_accepts_the_builtin_pack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, RuleSet::default().to_toml()).unwrap();
        let (code, text) = check(&path);
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(text.contains("ok"), "{text}");
    }
}
