//! Per-entity risk: decaying scores, the rules behind them, blocks and allow-listing.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::config::{EntityKind, Scoring};
use super::{Action, Verdict};

/// An entity the SIEM keeps a score for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKey {
    /// A client address, masked to its key prefix (IPv6 /64 by default).
    Ip(IpAddr),
    /// An application user.
    User(Arc<str>),
    /// A session (keyed hash).
    Session(Arc<str>),
    /// A device (keyed hash).
    Device(Arc<str>),
    /// A client network (IPv4 /24, IPv6 /48 by default), blocked as a whole by subnet
    /// escalation or by an operator. Its verdict applies to every address inside it.
    Net(IpNet),
}

impl EntityKey {
    /// The kind of entity.
    pub fn kind(&self) -> EntityKind {
        match self {
            EntityKey::Ip(_) => EntityKind::Ip,
            EntityKey::User(_) => EntityKind::User,
            EntityKey::Session(_) => EntityKind::Session,
            EntityKey::Device(_) => EntityKind::Device,
            EntityKey::Net(_) => EntityKind::Ip,
        }
    }

    /// Parses the display form (`ip:203.0.113.7`, `user:alice`, `session:…`, `device:…`,
    /// `net:203.0.113.0/24`).
    pub fn parse(s: &str) -> Option<EntityKey> {
        let (kind, v) = s.split_once(':')?;
        match kind {
            "ip" => v.parse().ok().map(EntityKey::Ip),
            "user" => Some(EntityKey::User(v.into())),
            "session" => Some(EntityKey::Session(v.into())),
            "device" => Some(EntityKey::Device(v.into())),
            "net" => v.parse::<IpNet>().ok().map(|n| EntityKey::Net(n.trunc())),
            _ => None,
        }
    }
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityKey::Ip(ip) => write!(f, "ip:{ip}"),
            EntityKey::User(u) => write!(f, "user:{u}"),
            EntityKey::Session(s) => write!(f, "session:{s}"),
            EntityKey::Device(d) => write!(f, "device:{d}"),
            EntityKey::Net(n) => write!(f, "net:{n}"),
        }
    }
}

impl Serialize for EntityKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntityKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EntityKey::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an entity key: {s:?}")))
    }
}

/// What one rule contributed to an entity's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Rule id.
    pub rule: Arc<str>,
    /// Its share of the score, decayed to the state's time.
    pub score: f64,
    /// How many times it fired for this entity.
    pub hits: u32,
    /// A sample of what matched (a path, a user agent, a user name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<Arc<str>>,
    /// Whether every hit of this rule so far was weak evidence (a signature that free text
    /// can match): weak evidence alone may step an entity up, never throttle or block it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub weak: bool,
}

/// Distinct weak rules that corroborate each other: a person's search box rarely trips
/// three different classes of weak signature, a scanner spraying payloads does.
const WEAK_CORROBORATION: usize = 3;

/// How much one hit may count on its own (see [`EntityState::add_evidence`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Its whole score.
    Full,
    /// A signature hit: its first on the entity adds at most the step-up score, so one odd
    /// search tags the request that carried it and not the person's next ones; from the
    /// second on, its whole score.
    Signature,
    /// Text a person could type: at most the step-up score each time, and, until something
    /// corroborates it, never more than a step-up.
    Weak,
}

/// How long an entity's state must be kept whatever other traffic does, by rank: the
/// repeat-offender history (rank 1), a throttle (2), an automatic block (3), an operator's
/// block or allow (4). `ends[r - 1]` is when the rank `r` hold ends (ms since the epoch); 0
/// for none. Kept up to date by the engine; a [`RiskStore`](crate::store::RiskStore) uses it
/// to keep decided entities out of reach of eviction by others' traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// End of each rank's hold.
    pub ends: [i64; 4],
}

impl Hold {
    /// The strongest rank still held at `now` (0: none) and when it ends.
    pub fn at(&self, now: i64) -> (u8, i64) {
        for r in (0..4).rev() {
            if self.ends[r] > now {
                return (r as u8 + 1, self.ends[r]);
            }
        }
        (0, 0)
    }
}

/// Longest sample kept, in bytes.
const MAX_SAMPLE: usize = 120;

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Most contributions kept per entity; the weakest is dropped beyond this.
const MAX_CONTRIBUTIONS: usize = 8;

/// The risk state of one entity, as held by a [`RiskStore`](crate::store::RiskStore).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityState {
    /// Score at time `at`.
    pub score: f64,
    /// Time of `score`, ms since the epoch.
    pub at: i64,
    /// The rules behind the score.
    pub contributions: Vec<Contribution>,
    /// Blocked until this time (ms), if later than now.
    pub blocked_until: i64,
    /// Whether the block was set by an operator.
    pub manual_block: bool,
    /// How many automatic blocks this entity earned (each doubles the next).
    pub offenses: u32,
    /// Allow-listed until this time (ms): no action, no score.
    pub allow_until: i64,
    /// Last event time for this entity.
    pub last_seen: i64,
    /// How long the state is a decision that must not be evicted (see [`Hold`]).
    #[serde(default)]
    pub hold: Hold,
}

impl EntityState {
    /// Decays score and contributions to `now` (never backwards: replays may be out of order).
    pub fn decay(&mut self, now: i64, scoring: &Scoring) {
        if now <= self.at {
            return;
        }
        let hl = scoring.half_life.millis().max(1) as f64;
        let f = 0.5f64.powf((now - self.at) as f64 / hl);
        self.score *= f;
        for c in &mut self.contributions {
            c.score *= f;
        }
        self.at = now;
    }

    /// The score at `now` without changing the state.
    pub fn score_at(&self, now: i64, scoring: &Scoring) -> f64 {
        if now <= self.at {
            return self.score;
        }
        let hl = scoring.half_life.millis().max(1) as f64;
        self.score * 0.5f64.powf((now - self.at) as f64 / hl)
    }

    /// Adds a rule's score at `now`; starts a block when the score crosses the block threshold
    /// and the entity kind may be blocked. Returns whether a new block started.
    pub fn add(
        &mut self,
        rule: &Arc<str>,
        score: f64,
        sample: Option<&str>,
        now: i64,
        scoring: &Scoring,
        cap: Action,
    ) -> bool {
        self.add_evidence(rule, score, sample, Evidence::Full, now, scoring, cap)
    }

    /// [`add`](EntityState::add) for a hit that may count for less than its score (see
    /// [`Evidence`]): while every contribution is weak and fewer than three weak rules agree,
    /// the entity is stepped up at most.
    #[allow(clippy::too_many_arguments)]
    pub fn add_evidence(
        &mut self,
        rule: &Arc<str>,
        score: f64,
        sample: Option<&str>,
        evidence: Evidence,
        now: i64,
        scoring: &Scoring,
        cap: Action,
    ) -> bool {
        let sample = sample.map(|s| truncate(s, MAX_SAMPLE));
        self.decay(now, scoring);
        self.last_seen = self.last_seen.max(now);
        if self.allow_until > now {
            return false;
        }
        let weak = evidence == Evidence::Weak;
        // Decayed to `now` above: a hit long enough ago no longer counts as a first one.
        let first = !self
            .contributions
            .iter()
            .any(|c| c.rule == *rule && c.score >= 1.0);
        let score = match evidence {
            Evidence::Weak => score.min(scoring.step_up),
            Evidence::Signature if first => score.min(scoring.step_up),
            _ => score,
        };
        self.score += score;
        match self.contributions.iter_mut().find(|c| &c.rule == rule) {
            Some(c) => {
                c.score += score;
                c.hits = c.hits.saturating_add(1);
                c.weak &= weak;
                if let Some(s) = sample {
                    c.sample = Some(s.into());
                }
            }
            None => {
                if self.contributions.len() >= MAX_CONTRIBUTIONS {
                    if let Some((i, _)) = self
                        .contributions
                        .iter()
                        .enumerate()
                        .min_by(|a, b| a.1.score.total_cmp(&b.1.score))
                    {
                        self.contributions.swap_remove(i);
                    }
                }
                self.contributions.push(Contribution {
                    rule: rule.clone(),
                    score,
                    hits: 1,
                    sample: sample.map(Into::into),
                    weak,
                });
            }
        }
        self.ceil(scoring);
        let cap = if self.uncorroborated() {
            cap.min(Action::StepUp)
        } else {
            cap
        };
        if cap >= Action::Block && self.score >= scoring.block && self.blocked_until <= now {
            self.offenses = self.offenses.saturating_add(1);
            let base = scoring.block_for.millis().max(1);
            let factor = 1i64 << (self.offenses - 1).min(20);
            let dur = base
                .saturating_mul(factor)
                .min(scoring.max_block_for.millis().max(base));
            self.blocked_until = now.saturating_add(dur);
            self.manual_block = false;
            return true;
        }
        false
    }

    /// Holds the score at `scoring.max_score`, scaling the contributions with it so they
    /// still add up to the score.
    fn ceil(&mut self, scoring: &Scoring) {
        let max = scoring.max_score;
        if !(max.is_finite() && max > 0.0) || self.score <= max {
            return;
        }
        let sum: f64 = self.contributions.iter().map(|c| c.score).sum();
        if sum > 0.0 {
            let f = max / sum;
            for c in &mut self.contributions {
                c.score *= f;
            }
        }
        self.score = max;
    }

    /// Whether everything behind the score is weak evidence that nothing corroborates: fewer
    /// than three weak rules, no other rule.
    pub fn uncorroborated(&self) -> bool {
        let mut weak = 0;
        for c in &self.contributions {
            if c.score <= 0.0 {
                continue;
            }
            if !c.weak {
                return false;
            }
            weak += 1;
        }
        weak > 0 && weak < WEAK_CORROBORATION
    }

    /// Recomputes [`EntityState::hold`] after a change at `now`, for an entity whose automatic
    /// action is capped at `cap`.
    pub fn refresh_hold(&mut self, now: i64, scoring: &Scoring, cap: Action) {
        let mut ends = [0i64; 4];
        if self.blocked_until > now {
            ends[if self.manual_block { 3 } else { 2 }] = self.blocked_until;
        }
        if self.allow_until > now {
            ends[3] = ends[3].max(self.allow_until);
        }
        // Throttled until the score decays below the throttle threshold.
        let score = self.score_at(now, scoring);
        if cap >= Action::Throttle
            && score >= scoring.throttle
            && !self.uncorroborated()
            && self.allow_until <= now
        {
            let hl = scoring.half_life.millis().max(1) as f64;
            let left = hl * (score / scoring.throttle).log2();
            ends[1] = now.saturating_add(left.ceil().min(i64::MAX as f64 / 2.0) as i64 + 1);
        }
        // Repeat offenders' history, for `max_block_for` after their last block ends.
        if self.offenses > 0 {
            ends[0] = self
                .blocked_until
                .max(now)
                .saturating_add(scoring.max_block_for.millis());
        }
        self.hold = Hold { ends };
    }

    /// Keeps a fraction of the score (a trusted signal such as a passed second factor).
    pub fn relieve(&mut self, keep: f64, now: i64, scoring: &Scoring) {
        self.decay(now, scoring);
        self.score *= keep;
        if keep == 0.0 {
            self.contributions.clear();
        } else {
            for c in &mut self.contributions {
                c.score *= keep;
            }
        }
    }

    /// Whether the state still matters at `now` (else a store may forget it).
    pub fn is_live(&self, now: i64, scoring: &Scoring) -> bool {
        self.blocked_until > now
            || self.allow_until > now
            || self.score_at(now, scoring) >= 0.5
            || self.offenses > 0
    }

    /// The verdict for this entity at `now`, its automatic action capped at `cap`.
    pub fn verdict(&self, now: i64, scoring: &Scoring, cap: Action) -> Verdict {
        let score = self.score_at(now, scoring);
        if self.allow_until > now {
            return Verdict {
                action: Action::Allow,
                score,
                reasons: Vec::new(),
                retry_after_secs: None,
            };
        }
        let reasons = || {
            let mut c: Vec<&Contribution> = self.contributions.iter().collect();
            c.sort_by(|a, b| b.score.total_cmp(&a.score));
            let mut r: Vec<String> = c
                .into_iter()
                .filter(|c| c.score > 0.0)
                .map(|c| c.rule.to_string())
                .collect();
            if self.manual_block && self.blocked_until > now {
                r.insert(0, "admin.block".to_owned());
            }
            r
        };
        if self.blocked_until > now {
            let secs = (self.blocked_until - now + 999) / 1000;
            return Verdict {
                action: Action::Block,
                score,
                reasons: reasons(),
                retry_after_secs: Some(secs as u64),
            };
        }
        let mut action = if score >= scoring.block {
            // The block ran out while the score is still high: probation, not a silent re-block.
            Action::Throttle
        } else if score >= scoring.throttle {
            Action::Throttle
        } else if score >= scoring.step_up {
            Action::StepUp
        } else {
            Action::Allow
        };
        action = action.min(cap);
        if self.uncorroborated() {
            action = action.min(Action::StepUp);
        }
        if action == Action::Allow {
            return Verdict {
                action,
                score,
                reasons: Vec::new(),
                retry_after_secs: None,
            };
        }
        let retry_after_secs = (action == Action::Throttle).then(|| {
            let hl = scoring.half_life.0.as_secs_f64();
            (hl * (score / scoring.throttle).log2()).ceil().max(1.0) as u64
        });
        Verdict {
            action,
            score,
            reasons: reasons(),
            retry_after_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scoring() -> Scoring {
        Scoring::default()
    }

    #[test]
    fn scores_halve_every_half_life() {
        let s = scoring();
        let mut e = EntityState::default();
        let r: Arc<str> = "r".into();
        e.add(&r, 40.0, None, 0, &s, Action::Block);
        let hl = s.half_life.millis();
        assert!((e.score_at(hl, &s) - 20.0).abs() < 1e-9);
        assert!((e.score_at(2 * hl, &s) - 10.0).abs() < 1e-9);
        assert_eq!(e.verdict(0, &s, Action::Block).action, Action::StepUp);
        assert_eq!(e.verdict(hl, &s, Action::Block).action, Action::Allow);
    }

    #[test]
    fn repeat_offenders_get_longer_blocks() {
        let s = scoring();
        let r: Arc<str> = "r".into();
        let mut e = EntityState::default();
        assert!(e.add(&r, 100.0, None, 0, &s, Action::Block));
        let first = e.blocked_until;
        assert_eq!(first, s.block_for.millis());
        // After the block and a long quiet spell, offend again: twice as long.
        let later = first + 10 * s.half_life.millis();
        assert!(e.add(&r, 100.0, None, later, &s, Action::Block));
        assert_eq!(e.blocked_until - later, 2 * s.block_for.millis());
        assert_eq!(e.offenses, 2);
    }

    #[test]
    fn capped_entities_are_never_blocked() {
        let s = scoring();
        let r: Arc<str> = "r".into();
        let mut e = EntityState::default();
        assert!(!e.add(&r, 500.0, None, 0, &s, Action::StepUp));
        assert_eq!(e.verdict(0, &s, Action::StepUp).action, Action::StepUp);
    }

    #[test]
    fn entity_keys_round_trip_through_text() {
        for k in [
            EntityKey::Ip("2001:db8::".parse().unwrap()),
            EntityKey::User("alice".into()),
            EntityKey::Session("ab12".into()),
        ] {
            assert_eq!(EntityKey::parse(&k.to_string()), Some(k));
        }
    }
}
