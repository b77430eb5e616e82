//! The `tower-siem` command line (feature `cli`).
//!
//! | command | what |
//! |---|---|
//! | `tower-siem rules check FILE` | validate a rules file; every error with its line, rule and field |
//! | `tower-siem events [--db FILE] [--ip IP] [--user U] [--name N] [--since 10m] …` | query the SQLite event store: a table or JSON lines |
//! | `tower-siem triage FILE…` | replay access logs through the rules: who would have been stepped up or blocked ([`triage`]) |
//! | `tower-siem generate --lines N --seed S --out access.log --truth truth.json` | a labelled synthetic access log (see the `generate` module docs) |
//! | `tower-siem detect --nats URL --redis URL [--namespace NS] …` | the fleet detector (with features `nats` and `redis`): the rules over every replica's events, blocks shared through Redis |
//!
//! The binary is a few lines calling [`run`]; every command lives in its own module here so it
//! can be tested without spawning a process.

#[cfg(all(feature = "nats", feature = "redis"))]
mod detect;
mod events;
mod generate;
mod rules;
pub mod triage;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Run the fleet detector: read every replica's events from NATS JetStream, run the rules
    /// over the whole fleet, share the blocks through Redis.
    #[cfg(all(feature = "nats", feature = "redis"))]
    Detect(detect::DetectArgs),
}

/// Parses the process arguments and runs the command; the exit code to return from `main`.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Rules(cmd) => rules::run(cmd),
        Command::Events(args) => events::run(args),
        Command::Triage(args) => triage::run(args),
        Command::Generate(args) => generate::run(args),
        #[cfg(all(feature = "nats", feature = "redis"))]
        Command::Detect(args) => detect::run(args),
    }
}
