//! # tower-siem
//!
//! An embedded SIEM for axum and hyper services. One [`SiemLayer`] turns every request, and
//! every security action the application reports (login failed, password changed, second
//! factor passed), into a security [`Event`]; keeps a decaying risk score per client IP, user,
//! session and device; and, **before the handler runs**, lets the request through, tags it
//! with `X-Step-Up-Required`, throttles it, or blocks it. Events leave in the background
//! through a bounded pipeline to sinks; the request never waits for them.
//!
//! ## Quick start
//!
//! ```
//! use axum::{routing::post, Json, Router};
//! use tower_siem::{Event, SecurityContext, Siem};
//!
//! async fn login(ctx: SecurityContext, Json(form): Json<serde_json::Value>) -> &'static str {
//!     let user = form["username"].as_str().unwrap_or_default();
//!     if form["password"] != "wonderland" {
//!         ctx.fire(Event::new("auth.failure").user(user));
//!         return "wrong password";
//!     }
//!     // The verdict *after* this event: ask for a second factor if the account is under attack.
//!     if ctx.fire(Event::new("auth.success").user(user)).is_suspicious() {
//!         return "second factor required";
//!     }
//!     "welcome"
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let siem = Siem::builder().build()?;          // the built-in rule pack
//! let app: Router = Router::new().route("/login", post(login)).layer(siem.layer());
//! # Ok(()) }
//! ```
//!
//! ## Pieces
//!
//! | module | what |
//! |---|---|
//! | [`layer`] | [`SiemLayer`], [`SiemService`], the [`SecurityContext`] extractor, route policies |
//! | [`engine`] | rules (threshold, distinct, signature, novelty, relief), scores, [`Verdict`]s, the TOML rules file |
//! | [`identify`] | client IP from the socket peer and trusted proxies |
//! | [`signature`] | attack signatures over path, query and user agent |
//! | [`event`] | [`Event`], [`EventName`], [`Subject`], redaction |
//! | `detect` (features `nats`, `redis`) | the fleet detector: the rules over every replica's events, from JetStream, blocks written back through Redis |
//! | [`store`] | where entity risk lives ([`store::RiskStore`]; in-process by default, decisions shared through Redis with feature `redis`) |
//! | [`pipeline`], [`sink`] | bounded delivery to SQLite (feature `sqlite`, default), JSONL files, `tracing`, PostgreSQL, NATS JetStream, webhooks, or your own [`sink::Sink`] |
//! | [`format`](mod@format) | events as native JSON, Elastic Common Schema or OCSF |
//! | `sink::PostgresSink`, `sink::NatsSink` (features `postgres`, `nats`) | idempotent delivery to PostgreSQL and NATS JetStream |
//! | `admin` (feature `dashboard`) | the admin API: an axum `Router` of JSON endpoints (offenders, one entity, block, unblock, allow, stats, the network allow-list, stored events, a live feed over Server-Sent Events) behind a bearer token |
//! | `metrics` (feature `metrics`) | events, verdicts, delivery and store size through the `metrics` facade |
//! | [`pipeline::spool`] | opt-in disk spool: a sink outage or a restart loses nothing; alerts to a webhook (feature `webhook`) |
//!
//! ## Security model
//!
//! - The client IP is the socket peer unless the peer is a configured trusted proxy; forwarding
//!   headers are walked from the right. Trusting every address is refused.
//! - Any `X-Step-Up-Required` header sent by a client is removed before the handler sees it;
//!   the one the client gets back says `required`, not which rule fired.
//! - Decided entities (blocked, allow-listed, throttled, repeat offenders) are kept apart from
//!   the rest, in a bounded table that other clients' traffic cannot evict; three blocked
//!   addresses of one /24 (IPv6 /48) block the network.
//! - Weak signature evidence (text a person could type) steps up at most until something
//!   corroborates it; scores have a ceiling, so recovery after an attack is bounded.
//! - Every value of a repeated `User-Agent` is inspected, and a repeated singleton header is
//!   itself a signal.
//! - `Authorization`, `Cookie`, `Set-Cookie` and secret query values never reach a sink;
//!   session and device ids are stored as keyed hashes.
//! - Every per-key structure has a capacity: a flood of random addresses cannot grow memory
//!   past it.
//! - Users and devices are never blocked automatically, only stepped up: an attacker must not
//!   be able to lock a victim out of their account.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "dashboard")]
#[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
pub mod admin;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(all(feature = "nats", feature = "redis"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "nats", feature = "redis"))))]
pub mod detect;
pub mod engine;
pub mod event;
pub mod format;
pub mod identify;
pub mod layer;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod pipeline;
pub mod reload;
mod siem;
pub mod signature;
pub mod sink;
pub mod store;

pub use engine::{Action, RuleSet, Verdict};
pub use event::{Event, EventName, Subject};
pub use layer::{PeerAddr, RoutePolicy, SecurityContext, SiemLayer, SiemService};
pub use siem::{BuildError, Siem, SiemBuilder, SiemStats};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
