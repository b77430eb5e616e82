//! The `tower-siem` command line (feature `cli`).
//!
//! | command | what |
//! |---|---|
//! | `tower-siem rules check FILE` | validate a rules file; every error with its line, rule and field |
//! | `tower-siem rules show [--format toml\|table]` | the built-in rule pack, as shipped or as a table |
//! | `tower-siem completions SHELL` | a completion script for bash, zsh, fish, elvish or powershell |
//! | `tower-siem events [--db FILE] [--ip IP] [--user U] [--name N] [--since 10m] …` | query the SQLite event store: a table or JSON lines |
//! | `tower-siem triage FILE…` | replay access logs through the rules: who would have been stepped up or blocked ([`triage`]) |
//! | `tower-siem generate --lines N --seed S --out access.log --truth truth.json` | a labelled synthetic access log (see the `generate` module docs) |
//! | `tower-siem offenders`, `explain E`, `block E --for 1h`, `unblock E`, `allow E --for 7d` | a running application's admin API (`$TOWER_SIEM_URL`, `$TOWER_SIEM_ADMIN_TOKEN`): a table or JSON |
//! | `tower-siem detect --nats URL --redis URL [--namespace NS] …` | the fleet detector (with features `nats` and `redis`): the rules over every replica's events, blocks shared through Redis |
//!
//! The binary is a few lines calling [`run`]; every command lives in its own module here so it
//! can be tested without spawning a process.

mod admin;
#[cfg(all(feature = "nats", feature = "redis"))]
mod detect;
mod events;
mod generate;
mod rules;
pub mod triage;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Command-line arguments of `tower-siem`.
#[derive(Debug, Parser)]
#[command(
    name = "tower-siem",
    version,
    about = "An embedded SIEM for axum/hyper services: offline tools"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with rules files.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Query the SQLite event store: newest matching events, as a table or JSON lines.
    Events(events::EventsArgs),
    /// Replay web-server access logs through the rules: who would have been stepped up or
    /// blocked, and why.
    Triage(triage::TriageArgs),
    /// Write a labelled synthetic access log (one simulated day) and its ground truth.
    Generate(generate::GenerateArgs),
    /// Who is stepped up, throttled or blocked now, from a running application's admin API.
    Offenders(admin::Target),
    /// One entity (ip:…, net:…/24, user:…) from the admin API: its verdict and the rules
    /// behind it.
    Explain(admin::EntityArgs),
    /// Block an entity through the admin API.
    Block(admin::ForArgs),
    /// Lift an entity's block (and clear its score) through the admin API.
    Unblock(admin::EntityArgs),
    /// Allow-list an entity through the admin API: no action against it, no score.
    Allow(admin::ForArgs),
    /// Run the fleet detector: read every replica's events from NATS JetStream, run the rules
    /// over the whole fleet, share the blocks through Redis.
    #[cfg(all(feature = "nats", feature = "redis"))]
    Detect(detect::DetectArgs),
    /// Print a shell completion script: `tower-siem completions bash > /etc/bash_completion.d/tower-siem`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// The completion script of `tower-siem` for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tower-siem", &mut out);
    out
}

/// Parses the process arguments and runs the command; the exit code to return from `main`.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Rules(cmd) => rules::run(cmd),
        Command::Events(args) => events::run(args),
        Command::Triage(args) => triage::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Offenders(t) => admin::run(admin::Request::Offenders(t)),
        Command::Explain(a) => admin::run(admin::Request::Explain(a)),
        Command::Block(a) => admin::run(admin::Request::Block(a)),
        Command::Unblock(a) => admin::run(admin::Request::Unblock(a)),
        Command::Allow(a) => admin::run(admin::Request::Allow(a)),
        #[cfg(all(feature = "nats", feature = "redis"))]
        Command::Detect(args) => detect::run(args),
        Command::Completions { shell } => {
            use std::io::Write;
            match std::io::stdout().write_all(&completions(shell)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_for_every_shell() {
        use clap::ValueEnum;
        for shell in clap_complete::Shell::value_variants() {
            let script = String::from_utf8(completions(*shell)).unwrap();
            assert!(script.contains("tower-siem"), "{shell}");
        }
        let bash = String::from_utf8(completions(clap_complete::Shell::Bash)).unwrap();
        assert!(
            bash.contains("rules") && bash.contains("completions"),
            "{bash}"
        );
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
