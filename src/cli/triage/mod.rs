//! `tower-siem triage`: who attacked us, from the access logs, with the same rules as the
//! live layer.
//!
//! ```text
//! tower-siem triage access.log access.log.1.gz [--format auto|combined|common|json]
//!                   [--config rules.toml] [--output table|json|ndjson] [--all]
//! ```
//!
//! # What is replayed
//!
//! Every parsed line becomes what [`SiemLayer`](crate::SiemLayer) would have done with the
//! request, at the line's own time: the signature packs run over its path, query and user
//! agent ([`Engine::inspect`](crate::engine::Engine::inspect)), the gate reads the client's
//! verdict, and after the "response" an `http.request` event (method, path, status, bytes,
//! user agent, client IP) goes to the rules. As in the layer, a request the gate would have
//! blocked is answered `403` and not applied to the rules, a throttled one is answered `429`
//! and applied (so `http.throttle_ignored` escalates a client that keeps going), and only the
//! requests the layer lets through reach the application.
//!
//! Login requests (a `POST` whose path contains `login`, `signin`, `session` or `auth` by
//! default; `--login-path` replaces the list) that reach the application also fire
//! `auth.failure` (status `401` or `403`; `--login-failure-status`) or `auth.success` (other
//! 2xx/3xx) before their `http.request`, as a login handler would with
//! [`SecurityContext::fire`](crate::SecurityContext::fire).
//!
//! # What offline replay can and cannot see
//!
//! An access log has no user names, sessions or devices, and no application events. So:
//! - Signatures (scanner user agents, sensitive files, traversal, SQLi, XSS, command and
//!   template injection, Log4Shell, Shellshock), `http.probe_burst` (403/404 bursts),
//!   `http.throttle_ignored` and `auth.bruteforce.ip` (failed logins per client) work as live.
//! - Rules keyed on the user (`auth.bruteforce.user`, `auth.stuffing`, `auth.distributed`,
//!   `auth.takeover`) see a user only when the line names one: the logged user (`%u`, HTTP
//!   basic auth) or a `user`, `username`, `login` or `email` query parameter. Logs of form
//!   logins carry neither, and these rules stay silent.
//! - Applications that answer a failed login with `200` (an error page) or a redirect back to
//!   the form cannot be told apart from a success; set `--login-failure-status` if yours
//!   answers failures with a status of their own.
//! - `mfa.*`, `account.*` and custom events do not appear in access logs.
//!
//! # A client's verdict
//!
//! A client is an IPv4 address or an IPv6 /64 (the engine's keying). Its `verdict` is the most
//! severe action the layer would have taken against any of its requests during the replay —
//! the gate's decision before a request, or the verdict right after its last event, so a client
//! whose final request crossed the line counts — and its `score` is the highest risk score it
//! reached. Its `reasons` are the rules that fired for it, with how often and the first log
//! line that made each fire. A client is *flagged* when its verdict is not `allow`.
//!
//! # Output
//!
//! `--output table` (default) prints the flagged clients, most dangerous first, with their
//! rules; `--output json` prints one object (see [`JsonReport`]); `--output ndjson` streams
//! every replayed event (`http.request`, and `auth.*` for logins) with its verdict and a
//! `source` attribute `file:line`, secret query values redacted.
//!
//! Malformed lines are counted; the first few are shown on stderr with their line numbers, and
//! the run goes on. Blank lines are skipped and not counted. Exit status: `0` when at least one
//! line parsed, `1` when none did, `2` when an input or the rules file cannot be read (the
//! report of what was read is still printed).
//!
//! # Speed and memory
//!
//! One thread per input reads blocks of lines, which are parsed in parallel (rayon); the
//! records are merged across inputs in time order (each input is assumed mostly in order) and
//! sharded by client over one replay thread per core, so a client's requests are replayed in
//! order. Memory is bounded whatever the input size: a few 512 KiB blocks in flight per input
//! (with more than two inputs, three blocks of `1 MiB / inputs`, at least 64 KiB, each), the
//! engine's bounded state, and a report table of at most `--max-clients` clients (default
//! 250,000): past it, the quarter of clients with the least against them is dropped (flagged
//! clients are kept first); `summary.clients` then over-counts clients seen again after being
//! dropped.
//!
//! Rules keyed on a user or on something other than the client see that user's events from
//! several replay threads, ordered by time within each thread only; windows and scores run on
//! event time, so this changes a verdict only when one user's events from different clients
//! interleave within milliseconds.

pub mod parse;
mod read;
mod replay;

use std::collections::BinaryHeap;
use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use rayon::prelude::*;
use serde::Serialize;

use crate::engine::{Action, RuleSet};
use crate::Siem;
use parse::Format;
use read::{Batch, Block, BlockReader};
use replay::{Client, Clients, LoginRule, Replayer};

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// Detect per input from its first lines.
    Auto,
    /// Apache/nginx combined (also nginx's default).
    Combined,
    /// Common Log Format.
    Common,
    /// JSON lines.
    Json,
}

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Flagged clients, for people.
    Table,
    /// One JSON object: summary and clients.
    Json,
    /// Every replayed event with its verdict, one JSON object per line.
    Ndjson,
}

/// Arguments of `tower-siem triage`.
#[derive(Debug, Args)]
pub(crate) struct TriageArgs {
    /// Access logs (`-` for stdin; gzip is decompressed). Several are merged in time order.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Rules file (TOML) extending the built-in pack (`builtin = false` in it drops the pack);
    /// the built-in pack alone by default.
    #[arg(long, value_name = "RULES.toml")]
    config: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Include clients with an `allow` verdict.
    #[arg(long)]
    all: bool,
    /// A path substring (case-insensitive) that makes a POST a login; repeat for several.
    #[arg(long = "login-path", value_name = "SUBSTRING",
          default_values_t = ["login".to_owned(), "signin".to_owned(), "session".to_owned(), "auth".to_owned()])]
    login_paths: Vec<String>,
    /// Statuses of a login that mean it failed (comma-separated).
    #[arg(long = "login-failure-status", value_delimiter = ',', default_values_t = [401u16, 403])]
    login_failure: Vec<u16>,
    /// Most clients kept in the report table.
    #[arg(long, default_value_t = 250_000)]
    max_clients: usize,
    /// Malformed lines shown on stderr.
    #[arg(long, default_value_t = 5)]
    show_malformed: usize,
    /// Replay threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// Inputs' batches and end, from a reader thread.
enum Msg {
    Batch(Batch),
    Error(String),
}

/// Blocks read ahead and parsed together per input (with one or two inputs).
const GROUP: usize = 4;
/// Records sent to a replay thread at once.
const SHARD_BATCH: usize = 2048;

/// The JSON report (`--output json`): `summary` and the flagged `clients`.
#[derive(Debug, Serialize)]
pub struct JsonReport {
    /// Totals.
    pub summary: Summary,
    /// Clients, highest score first; only flagged ones unless `--all`.
    pub clients: Vec<JsonClient>,
}

/// Totals of a triage run.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Non-blank lines read.
    pub lines: u64,
    /// Lines parsed.
    pub parsed: u64,
    /// Lines that did not parse.
    pub malformed: u64,
    /// Distinct clients (see the module docs on the report cap).
    pub clients: u64,
    /// Clients with a verdict other than `allow`.
    pub flagged: u64,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

/// One client in the JSON report.
#[derive(Debug, Serialize)]
pub struct JsonClient {
    /// IPv4 address, or IPv6 /64 written `prefix::/64`.
    pub ip: String,
    /// `block`, `step_up`, `throttle` or `allow`.
    pub verdict: &'static str,
    /// Highest risk score reached.
    pub score: f64,
    /// Requests seen.
    pub requests: u64,
    /// First request time (RFC 3339).
    pub first_seen: String,
    /// Last request time (RFC 3339).
    pub last_seen: String,
    /// Rules that fired for the client.
    pub reasons: Vec<JsonReason>,
}

/// A rule behind a client's verdict.
#[derive(Debug, Serialize)]
pub struct JsonReason {
    /// Rule id.
    pub rule: String,
    /// Times it fired for the client.
    pub hits: u64,
    /// `file:line: text` of the first line that made it fire.
    pub sample: String,
}

/// Runs `tower-siem triage`.
pub(crate) fn run(args: TriageArgs) -> ExitCode {
    match triage(&args) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "tower-siem triage: {e}");
            ExitCode::from(2)
        }
    }
}

struct Totals {
    summary: Summary,
    shown: usize,
    read_error: Option<String>,
}

impl Totals {
    fn account(&mut self, b: &Batch, names: &[String], show: usize) {
        self.summary.lines += u64::from(b.lines) - blank_lines(b);
        self.summary.parsed += b.recs.len() as u64;
        self.summary.malformed += u64::from(b.malformed);
        let mut err = std::io::stderr().lock();
        for m in &b.samples {
            if self.shown >= show {
                break;
            }
            self.shown += 1;
            let _ = writeln!(
                err,
                "{}:{}: malformed ({}): {}",
                names[b.input as usize],
                b.line_base + u64::from(m.line),
                m.why,
                m.excerpt
            );
        }
    }
}

fn blank_lines(b: &Batch) -> u64 {
    u64::from(b.lines) - b.recs.len() as u64 - u64::from(b.malformed)
}

fn triage(args: &TriageArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    let rules = match &args.config {
        Some(p) => RuleSet::from_file(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => RuleSet::default(),
    };
    let siem = Siem::builder()
        .rules(rules.clone())
        .build()
        .map_err(|e| e.to_string())?;
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err("stdin (`-`) can be read only once".into());
    }
    if args.files.len() > usize::from(u16::MAX) {
        return Err("too many inputs".into());
    }
    let bytes_read = Arc::new(AtomicU64::new(0));
    let mut inputs = Vec::new();
    let mut total_size = Some(0u64);
    for name in &args.files {
        let r =
            read::open(name, bytes_read.clone()).map_err(|e| format!("cannot read {name}: {e}"))?;
        total_size = match (total_size, std::fs::metadata(name)) {
            (Some(t), Ok(m)) if name != "-" && m.is_file() => Some(t + m.len()),
            _ => None,
        };
        inputs.push(r);
    }
    let names: Vec<String> = args
        .files
        .iter()
        .map(|f| {
            if f == "-" {
                "<stdin>".into()
            } else {
                f.clone()
            }
        })
        .collect();
    let format = match args.format {
        FormatArg::Auto => None,
        FormatArg::Combined => Some(Format::Combined),
        FormatArg::Common => Some(Format::Common),
        FormatArg::Json => Some(Format::Json),
    };

    let login = LoginRule {
        paths: args
            .login_paths
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| p.to_ascii_lowercase().into_bytes())
            .collect(),
        failure: args.login_failure.clone(),
    };
    let replayer = Arc::new(Replayer::new(siem, &rules, login, names.clone()));
    let ndjson = args.output == Output::Ndjson;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, 64);
    let stop = Arc::new(AtomicBool::new(false));

    // Replay threads, one per shard of clients.
    let per_shard_cap = (args.max_clients / threads).max(4);
    let mut shard_tx = Vec::new();
    let mut shard_join = Vec::new();
    for _ in 0..threads {
        let (tx, rx) = sync_channel::<Pending>(32);
        shard_tx.push(tx);
        let rp = replayer.clone();
        let stop = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("triage-replay".into())
            .spawn(move || shard(&rp, &rx, per_shard_cap, ndjson, &stop))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        shard_join.push(spawned);
    }

    // Reader threads, one per input.
    // Every input merged holds its blocks in flight: with many, smaller blocks and less
    // read-ahead keep the total near that of one input.
    let k = inputs.len();
    let (block, group) = if k <= 2 {
        (read::BLOCK, GROUP)
    } else {
        ((read::BLOCK * 2 / k).max(read::MIN_BLOCK), 1)
    };
    let lines_read = Arc::new(AtomicU64::new(0));
    let mut rxs = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let (tx, rx) = sync_channel::<Msg>(2 * group);
        rxs.push(rx);
        let lines = lines_read.clone();
        let br = BlockReader::new(input, block);
        std::thread::Builder::new()
            .name("triage-read".into())
            .spawn(move || reader(i as u16, br, group, format, &tx, &lines))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
    }

    let progress = (std::io::stderr().is_terminal())
        .then(|| Progress::start(total_size, bytes_read.clone(), lines_read.clone()));

    let mut totals = Totals {
        summary: Summary::default(),
        shown: 0,
        read_error: None,
    };
    let mut router = Router::new(shard_tx, replayer.siem.engine());
    merge(
        &rxs,
        &mut router,
        &mut totals,
        &names,
        args.show_malformed,
        &stop,
    );
    router.finish();
    drop(router);

    let mut clients: Vec<(IpAddr, Client)> = Vec::new();
    let mut evicted = 0;
    for j in shard_join {
        let c = j.join().map_err(|_| "a replay thread panicked")?;
        evicted += c.evicted;
        clients.extend(c.into_vec());
    }
    if let Some(p) = progress {
        p.finish();
    }

    let mut s = totals.summary;
    s.clients = clients.len() as u64 + evicted;
    s.flagged = clients
        .iter()
        .filter(|(_, c)| c.action > Action::Allow)
        .count() as u64;
    s.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    if evicted > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "tower-siem triage: more than {} clients; {evicted} with the least against them were \
             left out of the report (--max-clients)",
            args.max_clients
        );
    }
    if !args.all {
        clients.retain(|(_, c)| c.action > Action::Allow);
    }
    clients.sort_by(|a, b| {
        b.1.score
            .total_cmp(&a.1.score)
            .then(b.1.action.cmp(&a.1.action))
            .then(b.1.requests.cmp(&a.1.requests))
            .then(a.0.cmp(&b.0))
    });
    let report = JsonReport {
        clients: clients.iter().map(|(ip, c)| json_client(*ip, c)).collect(),
        summary: s,
    };
    let mut out = std::io::stdout().lock();
    let _ = match args.output {
        Output::Json => serde_json::to_writer(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Output::Table => write_table(&mut out, &report),
        Output::Ndjson => Ok(()),
    };
    let _ = out.flush();
    if args.output != Output::Table {
        let _ = writeln!(std::io::stderr(), "{}", summary_line(&report.summary));
    }
    if let Some(e) = totals.read_error {
        let _ = writeln!(std::io::stderr(), "tower-siem triage: {e}");
        return Ok(ExitCode::from(2));
    }
    if report.summary.lines == 0 {
        // An empty log (rotated overnight, say) is nothing to triage, not a failure: a cron
        // job over it should not fail.
        let _ = writeln!(
            std::io::stderr(),
            "tower-siem triage: warning: the input holds no line"
        );
    } else if report.summary.parsed == 0 {
        let _ = writeln!(
            std::io::stderr(),
            "tower-siem triage: no line could be parsed (try --format)"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads an input, `group` blocks at a time parsed in parallel, and sends the batches in order.
fn reader(
    input: u16,
    mut br: BlockReader,
    group_size: usize,
    format: Option<Format>,
    tx: &SyncSender<Msg>,
    lines: &AtomicU64,
) {
    let mut format = format;
    let mut line_base = 1u64;
    loop {
        let mut group = Vec::with_capacity(group_size);
        let mut end = false;
        let mut error = None;
        while group.len() < group_size {
            match br.next_block() {
                Ok(Some(b)) => group.push(b),
                Ok(None) => {
                    end = true;
                    break;
                }
                Err(e) => {
                    error = Some(e);
                    end = true;
                    break;
                }
            }
        }
        let f = *format.get_or_insert_with(|| {
            group
                .iter()
                .find_map(|b| match b {
                    Block::Lines(v) => read::detect_block(v),
                    Block::TooLong => None,
                })
                .unwrap_or(Format::Combined)
        });
        let batches: Vec<Batch> = group
            .into_par_iter()
            .map(|b| match b {
                Block::Lines(v) => Batch::parse(input, v, f),
                Block::TooLong => Batch::too_long(input),
            })
            .collect();
        for mut b in batches {
            b.line_base = line_base;
            line_base += u64::from(b.lines);
            lines.fetch_add(u64::from(b.lines), Ordering::Relaxed);
            if tx.send(Msg::Batch(b)).is_err() {
                return;
            }
        }
        if let Some(e) = error {
            let _ = tx.send(Msg::Error(format!(
                "read error after line {}: {e}",
                line_base - 1
            )));
            return;
        }
        if end {
            return;
        }
    }
}

/// Records bound for one replay thread.
#[derive(Default)]
struct Pending {
    batches: Vec<Arc<Batch>>,
    items: Vec<(u32, u32)>,
}

/// Sends each record to the replay thread of its client.
struct Router<'e> {
    tx: Vec<SyncSender<Pending>>,
    pending: Vec<Pending>,
    engine: &'e crate::engine::Engine,
    hasher: ahash::RandomState,
}

impl<'e> Router<'e> {
    fn new(tx: Vec<SyncSender<Pending>>, engine: &'e crate::engine::Engine) -> Self {
        let pending = tx.iter().map(|_| Pending::default()).collect();
        Router {
            tx,
            pending,
            engine,
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
        }
    }

    fn route(&mut self, batch: &Arc<Batch>, i: usize) {
        let ip = self.engine.ip_key(batch.recs[i].ip);
        let shard = (self.hasher.hash_one(ip) % self.tx.len() as u64) as usize;
        let p = &mut self.pending[shard];
        if !p.batches.last().is_some_and(|l| Arc::ptr_eq(l, batch)) {
            p.batches.push(batch.clone());
        }
        p.items.push(((p.batches.len() - 1) as u32, i as u32));
        if p.items.len() >= SHARD_BATCH {
            let full = std::mem::take(p);
            let _ = self.tx[shard].send(full);
        }
    }

    fn finish(&mut self) {
        for (p, tx) in self.pending.iter_mut().zip(&self.tx) {
            if !p.items.is_empty() {
                let _ = tx.send(std::mem::take(p));
            }
        }
    }
}

/// The next batch with records from an input, accounting for every batch on the way.
fn pull(
    rx: &Receiver<Msg>,
    input: usize,
    totals: &mut Totals,
    names: &[String],
    show: usize,
) -> Option<Arc<Batch>> {
    loop {
        match rx.recv() {
            Ok(Msg::Batch(b)) => {
                totals.account(&b, names, show);
                if !b.recs.is_empty() {
                    return Some(Arc::new(b));
                }
            }
            Ok(Msg::Error(e)) => {
                totals
                    .read_error
                    .get_or_insert_with(|| format!("{}: {e}", names[input]));
                return None;
            }
            Err(_) => return None,
        }
    }
}

/// Merges the inputs in time order and routes every record.
fn merge(
    rxs: &[Receiver<Msg>],
    router: &mut Router<'_>,
    totals: &mut Totals,
    names: &[String],
    show: usize,
    stop: &AtomicBool,
) {
    if let [rx] = rxs {
        while let Some(b) = pull(rx, 0, totals, names, show) {
            for i in 0..b.recs.len() {
                router.route(&b, i);
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
        }
        return;
    }
    // k-way merge on (time, input): each input's records are taken in file order.
    let mut heads: Vec<Option<(Arc<Batch>, usize)>> = Vec::with_capacity(rxs.len());
    let mut heap = BinaryHeap::new();
    for (k, rx) in rxs.iter().enumerate() {
        let h = pull(rx, k, totals, names, show);
        if let Some(b) = &h {
            heap.push(std::cmp::Reverse((b.recs[0].time_ms, k)));
        }
        heads.push(h.map(|b| (b, 0)));
    }
    while let Some(std::cmp::Reverse((_, k))) = heap.pop() {
        let Some((b, i)) = heads[k].take() else {
            continue;
        };
        router.route(&b, i);
        let next = if i + 1 < b.recs.len() {
            Some((b, i + 1))
        } else {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            pull(&rxs[k], k, totals, names, show).map(|b| (b, 0))
        };
        if let Some((b, i)) = &next {
            heap.push(std::cmp::Reverse((b.recs[*i].time_ms, k)));
        }
        heads[k] = next;
    }
}

/// A replay thread: replays its clients' records in order; returns its report table.
fn shard(
    rp: &Replayer,
    rx: &Receiver<Pending>,
    cap: usize,
    ndjson: bool,
    stop: &AtomicBool,
) -> Clients {
    let mut clients = Clients::new(cap);
    let mut out = Vec::with_capacity(if ndjson { 1 << 16 } else { 0 });
    while let Ok(p) = rx.recv() {
        for &(bi, ri) in &p.items {
            let b = &p.batches[bi as usize];
            let r = &b.recs[ri as usize];
            rp.replay(b, r, &mut clients, ndjson.then_some(&mut out));
            if out.len() >= 1 << 16 {
                flush_stdout(&mut out, stop);
            }
        }
    }
    flush_stdout(&mut out, stop);
    clients
}

fn flush_stdout(out: &mut Vec<u8>, stop: &AtomicBool) {
    if out.is_empty() {
        return;
    }
    if !stop.load(Ordering::Relaxed) && std::io::stdout().lock().write_all(out).is_err() {
        // The reader went away (`| head`): stop reading input.
        stop.store(true, Ordering::Relaxed);
    }
    out.clear();
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn client_label(ip: IpAddr) -> String {
    match ip {
        // The engine keys IPv6 clients by /64.
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => format!("{v6}/64"),
        ip => ip.to_string(),
    }
}

fn json_client(ip: IpAddr, c: &Client) -> JsonClient {
    let mut reasons: Vec<JsonReason> = c
        .reasons
        .iter()
        .map(|r| JsonReason {
            rule: r.rule.to_string(),
            hits: r.hits,
            sample: r.sample.clone(),
        })
        .collect();
    reasons.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.rule.cmp(&b.rule)));
    JsonClient {
        ip: client_label(ip),
        verdict: c.action.as_str(),
        score: (c.score * 10.0).round() / 10.0,
        requests: c.requests,
        first_seen: rfc3339(c.first_seen),
        last_seen: rfc3339(c.last_seen),
        reasons,
    }
}

fn summary_line(s: &Summary) -> String {
    let rate = if s.seconds > 0.0 {
        (s.lines as f64 / s.seconds).round()
    } else {
        0.0
    };
    format!(
        "{} lines, {} parsed, {} malformed; {} clients, {} flagged; {:.2} s ({} lines/s)",
        s.lines, s.parsed, s.malformed, s.clients, s.flagged, s.seconds, rate
    )
}

fn write_table(out: &mut impl Write, r: &JsonReport) -> std::io::Result<()> {
    if r.clients.is_empty() {
        writeln!(out, "no client flagged")?;
    } else {
        writeln!(
            out,
            "{:<9} {:>7} {:>9}  {:<24} {:<21} {:<21}",
            "VERDICT", "SCORE", "REQUESTS", "CLIENT", "FIRST SEEN", "LAST SEEN"
        )?;
    }
    for c in &r.clients {
        writeln!(
            out,
            "{:<9} {:>7.1} {:>9}  {:<24} {:<21} {:<21}",
            c.verdict, c.score, c.requests, c.ip, c.first_seen, c.last_seen
        )?;
        for reason in &c.reasons {
            writeln!(
                out,
                "    {:<24} x{:<6} {}",
                reason.rule, reason.hits, reason.sample
            )?;
        }
    }
    writeln!(out, "{}", summary_line(&r.summary))
}

/// The progress bar on a terminal: bytes (compressed for gzip), lines/s, ETA.
struct Progress {
    bar: indicatif::ProgressBar,
    done: Arc<AtomicBool>,
    ticker: std::thread::JoinHandle<()>,
}

impl Progress {
    fn start(total: Option<u64>, bytes: Arc<AtomicU64>, lines: Arc<AtomicU64>) -> Self {
        let bar = match total {
            Some(t) => indicatif::ProgressBar::new(t).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} ({binary_bytes_per_sec}) {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            ),
            None => indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("{spinner} {bytes} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            ),
        };
        let done = Arc::new(AtomicBool::new(false));
        let (b2, d2) = (bar.clone(), done.clone());
        let started = Instant::now();
        let ticker = std::thread::spawn(move || {
            while !d2.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let l = lines.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                b2.set_position(bytes.load(Ordering::Relaxed));
                b2.set_message(format!("{l} lines, {:.0} lines/s", l as f64 / secs));
            }
        });
        Progress { bar, done, ticker }
    }

    fn finish(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.ticker.join();
        self.bar.finish_and_clear();
    }
}
