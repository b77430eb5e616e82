//! Rules without a restart: [`Siem::reload_rules`] and an opt-in file watcher
//! ([`Siem::watch_rules`]).
//!
//! A reload compiles the new rules completely first. When they are refused (a TOML syntax
//! error, a bound exceeded, a changed `[scoring]`) the running rules stay as they are, the
//! error (with its line and field) is returned, logged with `tracing::warn!` and recorded as a
//! `siem.rules.reload` event with `outcome=failure`. When they compile, one atomic swap puts
//! them in force: an event, or a request's inspection, sees the old set or the new one, never
//! a mix. Window state of rules that keep their id and the shape of their state carries over
//! (see [`ReloadReport`]); entity scores and blocks live in the store and are untouched.
//!
//! Every reload, successful or not, is a `siem.rules.reload` event (no subject) with the
//! attributes `outcome` (`success` or `failure`), `source` (the file's path, or `inline`),
//! and either `error` or the counts `added`, `removed`, `changed`, `kept`, `reset`.
//!
//! ```
//! use tower_siem::{Event, Siem};
//!
//! let siem = Siem::builder().build()?;
//! // Switch a built-in rule off, add one.
//! let report = siem.reload_rules(r#"
//! [[rule]]
//! id = "auth.bruteforce.user"
//! enabled = false
//!
//! [[rule]]
//! id = "export.burst"
//! kind = "threshold"
//! on = ["data.export"]
//! key = "user"
//! count = 3
//! window = "1m"
//! score = 40
//! "#)?;
//! assert_eq!((report.added, report.removed), (1, 1));
//! // A bad file keeps the rules in force.
//! let err = siem.reload_rules("[[rule]]\nid = \"x\"\nkind = \"threshold\"\ncount = \"many\"\n").unwrap_err();
//! assert_eq!(err.line(), Some(4));
//! assert!(siem.engine().rules().iter().any(|r| r.id == "export.burst"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Weak};
use std::time::Duration;

use serde::Serialize;

use crate::engine::{ConfigError, ReloadReport, RuleInfo, RuleSet};
use crate::event::Event;
use crate::siem::Inner;
use crate::Siem;

/// The watcher's default polling interval.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The largest rules file the watcher reads (bigger ones are refused as an error).
pub const MAX_RULES_FILE: u64 = 4 * 1024 * 1024;

/// Longest error message kept in a reload's event and status.
const MAX_ERROR_LEN: usize = 512;

/// How the last reload went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReloadOutcome {
    /// When it was attempted.
    pub at: jiff::Timestamp,
    /// `success` or `failure`.
    pub outcome: &'static str,
    /// The file's path, or `inline`.
    pub source: String,
    /// Why it was refused (line, rule, field and message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What changed, when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<ReloadReport>,
}

/// The rules in force and how the last reload went (the admin API's `GET /api/rules`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RulesStatus {
    /// The rules in force, in file order.
    pub rules: Vec<RuleInfo>,
    /// The rules file the SIEM reloads from, if it knows one
    /// ([`SiemBuilder::rules_file`](crate::SiemBuilder::rules_file) or [`Siem::watch_rules`]).
    pub file: Option<PathBuf>,
    /// The last reload attempted, if any.
    pub last_reload: Option<ReloadOutcome>,
}

/// State kept by the [`Siem`] about reloads (not on the request path).
#[derive(Default)]
pub(crate) struct ReloadState {
    pub(crate) file: parking_lot::Mutex<Option<PathBuf>>,
    pub(crate) last: parking_lot::Mutex<Option<ReloadOutcome>>,
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

impl Siem {
    /// Replaces the rules in force with those of a TOML rules file's text, read as
    /// [`SiemBuilder::rules_file`](crate::SiemBuilder::rules_file) reads a file: it extends
    /// the built-in pack unless it sets `builtin = false`. See the [module docs](crate::reload).
    ///
    /// # Errors
    /// The text is refused (the error names the line and field); the rules in force stay.
    pub fn reload_rules(&self, toml: &str) -> Result<ReloadReport, ConfigError> {
        self.reload_from("inline", RuleSet::from_toml(toml))
    }

    /// [`reload_rules`](Self::reload_rules) from a file; the SIEM remembers the path for
    /// the admin API's `POST /api/rules/reload`.
    ///
    /// # Errors
    /// The file cannot be read or is refused; the rules in force stay.
    pub fn reload_rules_from_file(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<ReloadReport, ConfigError> {
        let path = path.as_ref();
        *self.inner.reload.file.lock() = Some(path.to_owned());
        self.reload_from(&path.display().to_string(), RuleSet::from_file(path))
    }

    /// [`reload_rules`](Self::reload_rules) with a set built in code (exactly these rules, as
    /// [`SiemBuilder::rules`](crate::SiemBuilder::rules)).
    ///
    /// # Errors
    /// The set does not validate; the rules in force stay.
    pub fn reload_rule_set(&self, rules: RuleSet) -> Result<ReloadReport, ConfigError> {
        self.reload_from("inline", Ok(rules))
    }

    /// Reloads from the rules file the SIEM knows (given to
    /// [`SiemBuilder::rules_file`](crate::SiemBuilder::rules_file),
    /// [`reload_rules_from_file`](Self::reload_rules_from_file) or
    /// [`watch_rules`](Self::watch_rules)); `None` when it knows none.
    pub fn reload_rules_file(&self) -> Option<Result<ReloadReport, ConfigError>> {
        let path = self.rules_file()?;
        Some(self.reload_from(&path.display().to_string(), RuleSet::from_file(&path)))
    }

    /// The rules file the SIEM reloads from, if it knows one.
    pub fn rules_file(&self) -> Option<PathBuf> {
        self.inner.reload.file.lock().clone()
    }

    /// The rules in force and how the last reload went.
    pub fn rules_status(&self) -> RulesStatus {
        RulesStatus {
            rules: self.inner.engine.rules(),
            file: self.rules_file(),
            last_reload: self.inner.reload.last.lock().clone(),
        }
    }

    fn reload_from(
        &self,
        source: &str,
        parsed: Result<RuleSet, ConfigError>,
    ) -> Result<ReloadReport, ConfigError> {
        let result = parsed.and_then(|set| self.inner.engine.reload(&set));
        let mut event = Event::new("siem.rules.reload").attr("source", source);
        let outcome = match &result {
            Ok(r) => {
                tracing::info!(
                    source,
                    added = r.added,
                    removed = r.removed,
                    changed = r.changed,
                    kept = r.kept,
                    reset = r.reset,
                    "rules reloaded"
                );
                event = event
                    .attr("outcome", "success")
                    .attr("added", r.added.to_string())
                    .attr("removed", r.removed.to_string())
                    .attr("changed", r.changed.to_string())
                    .attr("kept", r.kept.to_string())
                    .attr("reset", r.reset.to_string());
                ReloadOutcome {
                    at: self.now(),
                    outcome: "success",
                    source: source.to_owned(),
                    error: None,
                    report: Some(r.clone()),
                }
            }
            Err(e) => {
                let message = truncate(e.to_string());
                tracing::warn!(source, error = %message, "rules reload refused; the rules in force stay");
                event = event
                    .attr("outcome", "failure")
                    .attr("error", message.clone());
                ReloadOutcome {
                    at: self.now(),
                    outcome: "failure",
                    source: source.to_owned(),
                    error: Some(message),
                    report: None,
                }
            }
        };
        *self.inner.reload.last.lock() = Some(outcome);
        self.fire_prepared(event);
        result
    }

    /// Watches a rules file: every `interval` (`None`: [`DEFAULT_WATCH_INTERVAL`]) a thread
    /// reads it and, when its modification time, length or content hash changed since the last
    /// look, reloads it ([`reload_rules_from_file`](Self::reload_rules_from_file)); a refused
    /// file keeps the rules in force and is reported once (until it changes again). Polling
    /// rather than file-system notifications: an editor's save by rename is seen like any
    /// other write. The file as it is when watching starts is taken as already loaded.
    ///
    /// The watcher stops when the [`WatchHandle`] is dropped, or when every clone of the
    /// [`Siem`] is gone. [`WatchHandle::check_now`] looks at once.
    ///
    /// # Errors
    /// The watcher thread could not be started.
    pub fn watch_rules(
        &self,
        path: impl AsRef<Path>,
        interval: Option<Duration>,
    ) -> std::io::Result<WatchHandle> {
        let path = path.as_ref().to_owned();
        *self.inner.reload.file.lock() = Some(path.clone());
        let watch = Arc::new(Watch {
            siem: Arc::downgrade(&self.inner),
            seen: parking_lot::Mutex::new(fingerprint(&path)),
            path,
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let every = interval
            .unwrap_or(DEFAULT_WATCH_INTERVAL)
            .max(Duration::from_millis(10));
        let w = Arc::clone(&watch);
        std::thread::Builder::new()
            .name("tower-siem-rules-watch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if w.siem.strong_count() == 0 {
                        break;
                    }
                    w.check();
                }
            })?;
        Ok(WatchHandle { watch, _stop: stop })
    }
}

/// What the watcher compares: modification time, length and a hash of the content; `None`
/// for a file that cannot be read.
type Fingerprint = Option<(Option<std::time::SystemTime>, u64, u64)>;

fn fingerprint(path: &Path) -> Fingerprint {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_RULES_FILE {
        // Not read: the length alone tells a change.
        return Some((meta.modified().ok(), meta.len(), 0));
    }
    let content = std::fs::read(path).ok()?;
    let hash = ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(&content);
    Some((meta.modified().ok(), content.len() as u64, hash))
}

struct Watch {
    siem: Weak<Inner>,
    path: PathBuf,
    seen: parking_lot::Mutex<Fingerprint>,
}

impl Watch {
    fn check(&self) -> Option<Result<ReloadReport, ConfigError>> {
        let inner = self.siem.upgrade()?;
        let siem = Siem { inner };
        let mut seen = self.seen.lock();
        let now = fingerprint(&self.path);
        if now == *seen {
            return None;
        }
        *seen = now;
        let too_big = now.is_some_and(|(_, len, _)| len > MAX_RULES_FILE);
        let parsed = if too_big {
            Err(ConfigError::new(format!(
                "rules file larger than {MAX_RULES_FILE} bytes"
            )))
        } else {
            RuleSet::from_file(&self.path)
        };
        Some(siem.reload_from(&self.path.display().to_string(), parsed))
    }
}

/// A running rules-file watcher ([`Siem::watch_rules`]); dropping it stops the watcher.
pub struct WatchHandle {
    watch: Arc<Watch>,
    _stop: mpsc::Sender<()>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle")
            .field("path", &self.watch.path)
            .finish_non_exhaustive()
    }
}

impl WatchHandle {
    /// Looks at the file now, as the watcher does on each tick: `None` when it has not
    /// changed since the last look (or the SIEM is gone), else the reload's result.
    pub fn check_now(&self) -> Option<Result<ReloadReport, ConfigError>> {
        self.watch.check()
    }

    /// The file watched.
    pub fn path(&self) -> &Path {
        &self.watch.path
    }
}
