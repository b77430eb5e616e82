//! Writes a synthetic combined-format access log to stdout, for benchmarking `tower-siem
//! triage` (`benches/triage.sh`). Mostly browsers on a shop, with crawlers, a monitor, and a
//! few attackers (scanner user agents, `.env` probes, directory brute forcing, SQL injection,
//! login brute force). Deterministic for a given seed; not a labelled data set.
//!
//! ```text
//! cargo run --release --example gen_combined -- 1000000 [seed] > access.log
//! ```

use std::io::{BufWriter, Write};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
];
const BOTS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "UptimeRobot/2.0; http://www.uptimerobot.com/",
];
const PAGES: &[&str] = &[
    "/",
    "/products",
    "/products/42",
    "/products/1337?color=blue&size=m",
    "/search?q=select+fit+jeans",
    "/search?q=o%27neill+jacket",
    "/cart",
    "/checkout",
    "/api/v1/cart/items",
    "/api/v1/products?page=2&sort=price",
    "/static/app.4f2a9c.js",
    "/static/style.9b1e.css",
    "/static/img/logo.png",
    "/favicon.ico",
    "/blog/2024/01/how-we-ship",
    "/about",
];
const SCANS: &[&str] = &[
    "/.env",
    "/.git/config",
    "/wp-login.php",
    "/backup.sql",
    "/phpmyadmin/",
    "/admin/.htpasswd",
    "/config.php.bak",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    // 2024-01-01T00:00:00Z; about one line every 80 ms.
    let mut t: i64 = 1_704_067_200_000;
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    for _ in 0..n {
        t += rng.below(160) as i64;
        let roll = rng.below(1000);
        let (ip, method, target, status, agent): (String, &str, String, u16, &str) = match roll {
            // Attackers: a handful of addresses each.
            0..=2 => (
                format!("198.51.100.{}", rng.below(8)),
                "GET",
                rng.pick(SCANS).to_owned(),
                404,
                "Mozilla/5.0 zgrab/0.x",
            ),
            3..=4 => (
                format!("203.0.113.{}", rng.below(4)),
                "GET",
                format!("/dir{}/", rng.below(100_000)),
                404,
                "gobuster/3.6",
            ),
            5 => (
                format!("203.0.113.{}", 10 + rng.below(4)),
                "GET",
                format!(
                    "/products?id={}%27%20UNION%20SELECT%20password%20FROM%20users--",
                    rng.below(99)
                ),
                500,
                "sqlmap/1.7.2#stable (https://sqlmap.org)",
            ),
            6..=7 => (
                format!("192.0.2.{}", rng.below(4)),
                "POST",
                "/login".to_owned(),
                401,
                AGENTS[0],
            ),
            8..=60 => (
                format!("66.249.{}.{}", rng.below(4), rng.below(250)),
                "GET",
                rng.pick(PAGES).to_owned(),
                200,
                rng.pick(BOTS),
            ),
            _ => {
                let client = rng.below(20_000);
                let page = rng.pick(PAGES);
                let (method, target, status) = match rng.below(100) {
                    0 => (
                        "POST",
                        "/login".to_owned(),
                        if rng.below(5) == 0 { 401 } else { 302 },
                    ),
                    1..=2 => (
                        "GET",
                        format!("/products/{}", 100_000 + rng.below(900_000)),
                        404,
                    ),
                    3..=5 => ("POST", "/api/v1/cart/items".to_owned(), 201),
                    6..=20 => ("GET", page.to_owned(), 304),
                    _ => ("GET", page.to_owned(), 200),
                };
                (
                    format!(
                        "10.{}.{}.{}",
                        client >> 16,
                        (client >> 8) & 255,
                        client & 255
                    ),
                    method,
                    target,
                    status,
                    AGENTS[(client % AGENTS.len() as u64) as usize],
                )
            }
        };
        let secs = t / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil(days);
        let bytes = if status == 304 {
            0
        } else {
            200 + rng.below(40_000)
        };
        let _ = writeln!(
            out,
            "{ip} - - [{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000] \"{method} {target} HTTP/1.1\" {status} {bytes} \"https://shop.example/\" \"{agent}\"",
            months[(m - 1) as usize],
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        );
    }
    let _ = out.flush();
}

/// Civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
