//! The compiled rule set: every rule-dependent part of the [`Engine`](super::Engine), built
//! whole and swapped whole by a reload.
//!
//! A reload compiles the new [`RuleSet`] completely before anything changes; then one atomic
//! store makes it current. An event or an inspection loads the set once and uses that one
//! throughout, so it sees the old set or the new one, never a mix.
//!
//! Window state moves over for a rule that keeps its id and the shape of its state: the same
//! kind, events (`on`, `status`, `gate`, `after`), key, `count`, `window`, `field` and
//! `remember`. A rule whose definition differs only in what it does on firing (`score`,
//! `target`, `keep`, `shadow`) keeps its windows; one whose shape changed starts them fresh
//! (the counts it held were of something else). Hit counters carry over by id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ahash::RandomState;
use serde::Serialize;

use super::config::{ConfigError, EntityKind, RuleConfig, RuleKind, RuleSet};
use super::window::BoundedMap;
use super::{Action, Compiled, EngineConfig, ACTIONS, WANTS_TABLE};
use crate::event::EventName;
use crate::signature::Inspector;

/// The rules in force and the indexes over them.
pub(crate) struct Rules {
    pub(crate) rules: Vec<Compiled>,
    pub(crate) by_name: HashMap<Box<str>, Vec<usize>, RandomState>,
    /// `by_name["http.request"]`, looked up once: the layer asks on every response.
    pub(crate) request_rules: Box<[usize]>,
    /// `wants_request` worked out ahead for statuses 0–999: bit `action as u8` of entry
    /// `status` is set when some `http.request` rule accepts that status under that gate.
    pub(crate) request_wants: Box<[u8]>,
    pub(crate) by_pack: HashMap<Box<str>, usize, RandomState>,
    pub(crate) inspector: Option<Inspector>,
    /// The definitions the set was compiled from (enabled or not).
    pub(crate) source: RuleSet,
    /// Threshold and distinct-count rules by [`Compiled::tag`], for the observations other
    /// replicas share.
    pub(crate) by_tag: HashMap<u64, usize, RandomState>,
}

/// What a reload changed, by rule id (enabled rules only: a rule switched off counts as
/// removed, one switched on as added).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// Rules new in the set.
    pub added: usize,
    /// Rules no longer in the set.
    pub removed: usize,
    /// Rules whose definition changed.
    pub changed: usize,
    /// Rules with the same definition as before.
    pub kept: usize,
    /// Of the changed rules, those whose window state started fresh (their state's shape
    /// changed); the others kept it.
    pub reset: usize,
}

/// One rule in force, as the admin API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// Rule id.
    pub id: String,
    /// Its kind (`threshold`, `distinct`, `novelty`, `signature`, `relief`).
    pub kind: RuleKind,
    /// Whether it only counts what it would have done.
    pub shadow: bool,
}

/// Whether two definitions keep state of the same meaning and shape.
fn same_shape(a: &RuleConfig, b: &RuleConfig) -> bool {
    a.kind == b.kind
        && a.on == b.on
        && a.key == b.key
        && a.count == b.count
        && a.window == b.window
        && a.field == b.field
        && a.remember == b.remember
        && a.after == b.after
        && a.status == b.status
        && a.gate == b.gate
        && a.pack == b.pack
}

impl Rules {
    /// Compiles `set`. With `old`, window state and hit counters of rules that still exist
    /// (see the module docs) are shared with it, and the report says what changed.
    pub(crate) fn compile(
        set: &RuleSet,
        config: &EngineConfig,
        old: Option<&Rules>,
    ) -> Result<(Rules, ReloadReport), ConfigError> {
        set.validate()?;
        let mut report = ReloadReport::default();
        let mut compiled = Vec::new();
        let mut by_name: HashMap<Box<str>, Vec<usize>, RandomState> = HashMap::default();
        let mut by_pack: HashMap<Box<str>, usize, RandomState> = HashMap::default();
        let mut packs = Vec::new();
        let builtin = crate::signature::builtin_packs();
        for r in set.rules.iter().filter(|r| r.enabled) {
            let idx = compiled.len();
            let key = r.key.unwrap_or(EntityKind::Ip);
            let after = r.after.as_ref().map(|a| {
                (
                    a.on.iter()
                        .map(|s| s.as_str().into())
                        .collect::<Vec<Box<str>>>(),
                    a.count as usize,
                    a.window.millis(),
                )
            });
            // The running rule of the same id, with its definition.
            let prior = old.and_then(|o| {
                let i = o.rules.iter().position(|c| *c.id == *r.id)?;
                let def = o.source.rules.iter().find(|d| d.id == r.id && d.enabled)?;
                Some((&o.rules[i], def))
            });
            let windows = match prior {
                Some((c, def)) => {
                    if def == r {
                        report.kept += 1;
                    } else {
                        report.changed += 1;
                    }
                    if same_shape(def, r) {
                        Some(Arc::clone(&c.windows))
                    } else {
                        report.reset += 1;
                        None
                    }
                }
                None => {
                    report.added += usize::from(old.is_some());
                    None
                }
            };
            let windows = windows.unwrap_or_else(|| {
                Arc::new(
                    BoundedMap::new(
                        if matches!(r.kind, RuleKind::Signature | RuleKind::Relief) {
                            1
                        } else {
                            config.window_capacity
                        },
                    )
                    // A key's events protect its window while they can still count: for the
                    // rule's window (a novelty rule's known values, for good).
                    .with_horizon(match r.kind {
                        RuleKind::Novelty => i64::MAX,
                        _ => r.window.map(|w| w.millis()).unwrap_or(0),
                    }),
                )
            });
            let count = |f: fn(&Compiled) -> &AtomicU64| {
                prior.map_or(0, |(c, _)| f(c).load(Ordering::Relaxed))
            };
            let c = Compiled {
                tag: super::window_hasher().hash_one(r.id.as_str()),
                id: r.id.as_str().into(),
                kind: r.kind,
                on: r.on.iter().map(|s| s.as_str().into()).collect(),
                key,
                target: r.target.unwrap_or(key),
                count: r.count.unwrap_or(1) as usize,
                window: r.window.map(|w| w.millis()).unwrap_or(i64::MAX),
                field: r.field,
                score: r.score.unwrap_or(0.0),
                status: r.status.clone(),
                gate: r.gate,
                after,
                remember: r.remember.unwrap_or(16) as usize, // 1..=1024: `validate`
                keep: r.keep.unwrap_or(0.0),
                shadow: r.shadow,
                windows,
                hits: AtomicU64::new(count(|c| &c.hits)),
                shadow_hits: AtomicU64::new(count(|c| &c.shadow_hits)),
            };
            let mut names: Vec<&str> = c.on.iter().map(|s| &**s).collect();
            if let Some((a, _, _)) = &c.after {
                names.extend(a.iter().map(|s| &**s));
            }
            names.sort_unstable();
            names.dedup();
            if r.kind == RuleKind::Signature {
                let pack = r.pack.clone().unwrap_or_default();
                let def = set
                    .packs
                    .iter()
                    .find(|p| p.id == pack)
                    .or_else(|| builtin.iter().find(|p| p.id == pack));
                if let Some(def) = def {
                    if !packs
                        .iter()
                        .any(|p: &crate::signature::Pack| p.id == def.id)
                    {
                        packs.push(def.clone());
                    }
                }
                by_pack.insert(pack.into(), idx);
            } else {
                for n in names {
                    by_name.entry(n.into()).or_default().push(idx);
                }
            }
            compiled.push(c);
        }
        if let Some(o) = old {
            report.removed = o
                .rules
                .iter()
                .filter(|c| !compiled.iter().any(|n| n.id == c.id))
                .count();
        }
        let inspector = if packs.is_empty() {
            None
        } else {
            Some(Inspector::new(packs).map_err(|e| ConfigError::new(e.to_string()).field("pack"))?)
        };
        let request_rules: Box<[usize]> = by_name
            .get(EventName::HTTP_REQUEST.as_str())
            .map_or_else(Box::default, |v| v.clone().into_boxed_slice());
        let wants = |status: Option<u16>, gate: Action| {
            request_rules
                .iter()
                .any(|&i| compiled[i].accepts(status, Some(gate)))
        };
        let request_wants = (0..WANTS_TABLE)
            .map(|status| {
                ACTIONS
                    .iter()
                    .filter(|&&a| wants(Some(status), a))
                    .fold(0u8, |bits, &a| bits | 1 << a as u8)
            })
            .collect();
        let by_tag = compiled
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.kind, RuleKind::Threshold | RuleKind::Distinct))
            .map(|(i, c)| (c.tag, i))
            .collect();
        Ok((
            Rules {
                by_tag,
                rules: compiled,
                by_name,
                request_rules,
                request_wants,
                by_pack,
                inspector,
                source: set.clone(),
            },
            report,
        ))
    }

    /// The rules in force, in file order.
    pub(crate) fn info(&self) -> Vec<RuleInfo> {
        self.rules
            .iter()
            .map(|r| RuleInfo {
                id: r.id.to_string(),
                kind: r.kind,
                shadow: r.shadow,
            })
            .collect()
    }
}
