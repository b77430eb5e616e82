//! `tower-siem detect`: the fleet detector as a process (features `cli`, `nats`, `redis`).
//!
//! ```text
//! tower-siem detect --nats nats://127.0.0.1:4222 --redis redis://127.0.0.1:6379/ \
//!                   [--namespace NS] [--stream SIEM_EVENTS] [--subject-prefix siem.events] \
//!                   [--consumer tower-siem-detect] [--rules FILE] [--every 10s] \
//!                   [--nats-tls] [--nats-ca FILE] [--nats-cert FILE --nats-key FILE] \
//!                   [--nats-creds FILE | --nats-nkey FILE | --nats-token-file FILE]
//! ```
//!
//! A user and password for NATS go in its URL (`tls://user:password@host:4222`); a token may
//! also come from `$TOWER_SIEM_NATS_TOKEN`. Secrets are read from files or the environment,
//! never taken as arguments (which other users can see), and URLs are printed without their
//! passwords.
//!
//! Reads the replicas' events from JetStream with a durable consumer, runs the rules over
//! the whole fleet, and writes its blocks to Redis, where every replica's gate reads them (see
//! [`FleetDetector`]). Prints a line of counters every `--every` and at exit (Ctrl-C).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::detect::FleetDetector;
use crate::engine::{Dur, RuleSet};
use crate::store::RedisStore;

#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    /// NATS server [default: $TOWER_SIEM_NATS, or nats://127.0.0.1:4222].
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// Redis server [default: $TOWER_SIEM_REDIS, or redis://127.0.0.1:6379/].
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// The replicas' `RedisStore` namespace.
    #[arg(long, value_name = "NS", default_value = "tower-siem")]
    namespace: String,
    /// The JetStream stream the replicas' `NatsSink` writes to.
    #[arg(long, value_name = "NAME", default_value = "SIEM_EVENTS")]
    stream: String,
    /// The replicas' subject prefix (to create the stream when absent).
    #[arg(long, value_name = "PREFIX", default_value = "siem.events")]
    subject_prefix: String,
    /// The durable consumer: a restart with the same name resumes where it stopped.
    #[arg(long, value_name = "NAME", default_value = "tower-siem-detect")]
    consumer: String,
    /// A rules file [default: the built-in pack].
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// How often to print the counters (30s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = Dur::parse)]
    every: Dur,
    /// Refuse to reach NATS without TLS (implied by a tls:// URL, --nats-ca and --nats-cert).
    #[arg(long)]
    nats_tls: bool,
    /// Trust this CA (PEM file) for NATS instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    nats_ca: Option<PathBuf>,
    /// A client certificate (PEM file, with its chain) for NATS servers that ask for one.
    #[arg(long, value_name = "FILE", requires = "nats_key")]
    nats_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM file).
    #[arg(long, value_name = "FILE", requires = "nats_cert")]
    nats_key: Option<PathBuf>,
    /// A NATS credentials file (user JWT and NKey seed, as nsc writes it).
    #[arg(long, value_name = "FILE")]
    nats_creds: Option<PathBuf>,
    /// A file holding the NKey seed (SU…) of the NATS user.
    #[arg(long, value_name = "FILE")]
    nats_nkey: Option<PathBuf>,
    /// A file holding the NATS token [default: $TOWER_SIEM_NATS_TOKEN].
    #[arg(long, value_name = "FILE")]
    nats_token_file: Option<PathBuf>,
}

/// The URL with the password of its user part masked, for printing.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// A file's contents, or a message naming it (never its contents).
fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

/// A secret held in a file: its first line, trimmed.
fn read_secret(path: &PathBuf, what: &str) -> Result<String, String> {
    let bytes = read(path, what)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{what} {} is not UTF-8 text", path.display()))?;
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

/// The NATS TLS and credential flags applied to the detector's builder.
fn nats_settings(
    args: &DetectArgs,
    mut b: crate::detect::FleetDetectorBuilder,
) -> Result<crate::detect::FleetDetectorBuilder, String> {
    if args.nats_tls {
        b = b.require_tls(true);
    }
    if let Some(path) = &args.nats_ca {
        b = b
            .tls_root_certificate(read(path, "the NATS CA")?)
            .map_err(|e| e.to_string())?;
    }
    if let (Some(cert), Some(key)) = (&args.nats_cert, &args.nats_key) {
        b = b
            .tls_client_certificate(
                read(cert, "the NATS client certificate")?,
                read(key, "the NATS client key")?,
            )
            .map_err(|e| e.to_string())?;
    }
    if let Some(path) = &args.nats_creds {
        b = b.credentials_file(path);
    }
    if let Some(path) = &args.nats_nkey {
        b = b
            .nkey(read_secret(path, "the NATS NKey seed file")?)
            .map_err(|e| e.to_string())?;
    }
    let token = match &args.nats_token_file {
        Some(path) => Some(read_secret(path, "the NATS token file")?),
        None => std::env::var("TOWER_SIEM_NATS_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    if let Some(token) = token {
        b = b.token(token);
    }
    Ok(b)
}

fn setting(flag: Option<String>, var: &str, default: &str) -> String {
    flag.or_else(|| std::env::var(var).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| default.to_owned())
}

pub(crate) fn run(args: DetectArgs) -> ExitCode {
    let rules = match &args.rules {
        Some(path) => match RuleSet::from_file(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("tower-siem detect: {e}");
                return ExitCode::from(2);
            }
        },
        None => RuleSet::default(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tower-siem detect: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(detect(args, rules))
}

async fn detect(args: DetectArgs, rules: RuleSet) -> ExitCode {
    // Ctrl-C stops the detector after the batch in hand; listened for from the start, so an
    // early one is not the default (an abrupt exit).
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    #[cfg(unix)]
    {
        // Installed here, not on a first poll.
        let mut interrupt =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("tower-siem detect: cannot listen for Ctrl-C: {e}");
                    return ExitCode::FAILURE;
                }
            };
        tokio::spawn(async move {
            interrupt.recv().await;
            let _ = stop.send(());
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(());
    });
    let nats = setting(
        args.nats.clone(),
        "TOWER_SIEM_NATS",
        "nats://127.0.0.1:4222",
    );
    let redis = setting(
        args.redis.clone(),
        "TOWER_SIEM_REDIS",
        "redis://127.0.0.1:6379/",
    );
    let store = match RedisStore::builder(&redis)
        .namespace(&args.namespace)
        .share_scores(true)
        .build()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tower-siem detect: {e}");
            return ExitCode::from(2);
        }
    };
    if !store.synced(Duration::from_secs(5)).await {
        eprintln!(
            "tower-siem detect: Redis at {} does not answer yet; deciding locally until it does",
            without_password(&redis)
        );
    }
    let builder = FleetDetector::builder(&nats, store.clone())
        .stream(&args.stream)
        .subject_prefix(&args.subject_prefix)
        .consumer(&args.consumer)
        .rules(rules);
    let builder = match nats_settings(&args, builder) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tower-siem detect: {e}");
            return ExitCode::from(2);
        }
    };
    let detector = match builder.build() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tower-siem detect: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "tower-siem detect: stream {} on {}, consumer {}, decisions to {} (namespace {})",
        args.stream,
        without_password(&nats),
        args.consumer,
        without_password(&redis),
        args.namespace
    );
    let report = |d: &FleetDetector| {
        let s = d.stats();
        let r = store.stats();
        println!(
            "events {} read, {} judged, {} repeated, {} malformed, {} acknowledged; \
             decisions {} shared, {} received; errors {} (detector) {} (redis)",
            s.received,
            s.applied,
            s.duplicates,
            s.malformed,
            s.acked,
            r.published,
            r.received,
            s.errors,
            r.errors
        );
    };
    let every = Duration::from_millis(args.every.millis().max(1000) as u64);
    let run = detector.run(async {
        let _ = stopped.await;
    });
    tokio::pin!(run);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = tick.tick() => report(&detector),
        }
    };
    report(&detector);
    match result {
        Ok(()) => {
            store.flush(Duration::from_secs(5)).await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tower-siem detect: {e}");
            ExitCode::FAILURE
        }
    }
}
