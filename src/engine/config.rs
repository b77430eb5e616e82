//! Rules as data: the TOML rules file and the same structure built from code.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Action;
use crate::signature::Pack;

/// The built-in rule pack, as TOML. [`RuleSet::default`] parses it; the README explains each
/// number.
pub const DEFAULT_RULES: &str = include_str!("default_rules.toml");

/// A whole rules file: scoring parameters, custom signature packs and rules.
///
/// ```
/// use tower_siem::engine::RuleSet;
/// let rules = RuleSet::from_toml(r#"
/// [[rule]]
/// id = "login.bruteforce"
/// kind = "threshold"
/// on = ["auth.failure"]
/// key = "ip"
/// count = 5
/// window = "1m"
/// score = 50
/// "#).unwrap();
/// assert_eq!(rules.rules.len(), 1);
///
/// let err = RuleSet::from_toml("[[rule]]\nid = \"x\"\nkind = \"threshold\"\ncount = \"many\"\n").unwrap_err();
/// assert_eq!(err.line(), Some(4));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// How scores decay and map to actions.
    #[serde(default)]
    pub scoring: Scoring,
    /// Custom signature packs, referenced by `signature` rules next to the built-in ones.
    #[serde(default, rename = "pack", skip_serializing_if = "Vec::is_empty")]
    pub packs: Vec<Pack>,
    /// The rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
}

impl Default for RuleSet {
    fn default() -> Self {
        // The built-in file is checked by a unit test; failing here would be a build defect.
        RuleSet::from_toml(DEFAULT_RULES).expect("built-in rules parse")
    }
}

/// Score decay and the thresholds that turn a score into an action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scoring {
    /// Scores halve every `half_life`.
    pub half_life: Dur,
    /// Score at which an entity is stepped up.
    pub step_up: f64,
    /// Score at which an entity is throttled.
    pub throttle: f64,
    /// Score at which an entity is blocked.
    pub block: f64,
    /// First block duration; each repeat offence doubles it.
    pub block_for: Dur,
    /// Longest block.
    pub max_block_for: Dur,
    /// Strongest automatic action per entity kind. Users and devices default to `step_up`: the
    /// victim of an attack on their account must never be locked out by the attacker.
    pub max_action: MaxAction,
    /// The highest score an entity can reach (default 200, twice `block`): however long an
    /// attack goes on, the time back to `allow` after it stops is bounded by
    /// `half_life × log2(max_score / step_up)` (41 minutes with the defaults), plus any block
    /// still running.
    pub max_score: f64,
    /// Blocking a whole network when several of its addresses are blocked.
    pub subnet: SubnetEscalation,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            half_life: Dur(Duration::from_secs(15 * 60)),
            step_up: 30.0,
            throttle: 60.0,
            block: 100.0,
            block_for: Dur(Duration::from_secs(10 * 60)),
            max_block_for: Dur(Duration::from_secs(24 * 3600)),
            max_action: MaxAction::default(),
            max_score: 200.0,
            subnet: SubnetEscalation::default(),
        }
    }
}

/// Subnet escalation: when `count` addresses of one IPv4 `/ipv4_prefix` (or IPv6
/// `/ipv6_prefix`) network are blocked automatically within `window`, the network itself is
/// blocked, so an attacker rotating through the addresses of one network gains nothing.
/// Networks on the allow-list are never escalated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubnetEscalation {
    /// Whether networks are escalated at all (default on).
    pub enabled: bool,
    /// Distinct blocked client keys within one network needed (default 3).
    pub count: u32,
    /// Within this long (default 10 minutes).
    pub window: Dur,
    /// IPv4 networks of this prefix (default /24).
    pub ipv4_prefix: u8,
    /// IPv6 networks of this prefix (default /48).
    pub ipv6_prefix: u8,
}

impl Default for SubnetEscalation {
    fn default() -> Self {
        SubnetEscalation {
            enabled: true,
            count: 3,
            window: Dur(Duration::from_secs(10 * 60)),
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        }
    }
}

/// The strongest automatic action for each entity kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaxAction {
    /// Client IP (network).
    pub ip: Action,
    /// Application user.
    pub user: Action,
    /// Session.
    pub session: Action,
    /// Device.
    pub device: Action,
}

impl Default for MaxAction {
    fn default() -> Self {
        MaxAction {
            ip: Action::Block,
            user: Action::StepUp,
            session: Action::Block,
            device: Action::StepUp,
        }
    }
}

/// The rule kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RuleKind {
    /// At least `count` matching events per key within a sliding `window`.
    Threshold,
    /// At least `count` distinct values of `field` per key within a sliding `window`.
    Distinct,
    /// A signature pack matched the request's path, query or user agent.
    Signature,
    /// An `on` event with a value of `field` never seen before for the key, after at least
    /// `after.count` `after.on` events within `after.window` (new device after failures).
    Novelty,
    /// An `on` event lowers the target's score to `keep` × its value (trusted signal).
    Relief,
}

/// An entity kind: what a rule counts per, and whose score it raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// The client IP (IPv6 by prefix).
    Ip,
    /// The application user.
    User,
    /// The session.
    Session,
    /// The device.
    Device,
}

/// A value a `distinct` or `novelty` rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ValueField {
    /// Client IP (keyed by prefix).
    Ip,
    /// Client network: IPv4 /24, IPv6 /48.
    Network,
    /// User.
    User,
    /// Session.
    Session,
    /// Device.
    Device,
    /// User agent.
    UserAgent,
    /// Request path.
    Path,
}

/// One rule. Which fields apply depends on `kind`; [`RuleSet::from_toml`] checks them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique id, reported in verdicts (`auth.bruteforce.ip`).
    pub id: String,
    /// The rule kind.
    pub kind: RuleKind,
    /// What the rule is for (documentation).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Event names the rule reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<String>,
    /// What to count per (threshold, distinct, novelty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<EntityKind>,
    /// Whose score to raise; defaults to `key` (and to `ip` for signatures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<EntityKind>,
    /// Events (threshold) or distinct values (distinct) needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Sliding window length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Dur>,
    /// The value a distinct or novelty rule looks at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<ValueField>,
    /// Score added to the target each time the rule fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Only events with one of these HTTP statuses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<u16>,
    /// Only requests the gate answered with this action (`throttle`: a client ignoring 429s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Action>,
    /// Signature pack id (signature rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<String>,
    /// Novelty: the events that must precede.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<After>,
    /// Novelty: how many known values to remember per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember: Option<u32>,
    /// Relief: fraction of the score to keep (0 clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<f64>,
    /// Count what the rule would have done, without doing it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    /// A disabled rule is ignored.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// The condition a novelty rule requires before it fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct After {
    /// Event names that count.
    pub on: Vec<String>,
    /// How many.
    pub count: u32,
    /// Within this long before the novel event.
    pub window: Dur,
}

impl RuleConfig {
    /// A rule with the given id and kind and nothing else set.
    pub fn new(id: impl Into<String>, kind: RuleKind) -> Self {
        RuleConfig {
            id: id.into(),
            kind,
            description: String::new(),
            on: Vec::new(),
            key: None,
            target: None,
            count: None,
            window: None,
            field: None,
            score: None,
            status: Vec::new(),
            gate: None,
            pack: None,
            after: None,
            remember: None,
            keep: None,
            shadow: false,
            enabled: true,
        }
    }
}

/// A duration written as `"500ms"`, `"30s"`, `"10m"`, `"1h"`, `"7d"` or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    /// Milliseconds, saturating.
    pub fn millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }

    /// Parses the text form.
    pub fn parse(s: &str) -> Result<Dur, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: f64 = num.parse().map_err(|_| {
            format!("expected a duration like \"30s\", \"10m\" or \"1h\", found {s:?}")
        })?;
        let secs = match unit.trim() {
            "ms" => n / 1000.0,
            "s" | "" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            other => {
                return Err(format!(
                    "unknown duration unit {other:?} (use ms, s, m, h or d)"
                ))
            }
        };
        if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
            return Err(format!("duration out of range: {s:?}"));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl From<Duration> for Dur {
    fn from(d: Duration) -> Self {
        Dur(d)
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 86_400_000 == 0 && ms > 0 {
            write!(f, "{}d", ms / 86_400_000)
        } else if ms % 3_600_000 == 0 && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms % 60_000 == 0 && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like \"30s\", \"10m\", \"1h\" or a number of seconds")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|s| Dur(Duration::from_secs(s)))
                    .map_err(|_| E::custom("negative duration"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Dur::parse(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A rules file that was refused: where, which field, and what was expected.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConfigError {
    line: Option<usize>,
    rule: Option<String>,
    field: Option<String>,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ConfigError {
            line: None,
            rule: None,
            field: None,
            message: message.into(),
        }
    }

    pub(crate) fn in_rule(mut self, rule: &str) -> Self {
        self.rule = Some(rule.to_owned());
        self
    }

    pub(crate) fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    pub(crate) fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// 1-based line in the file, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The rule id, when the error is inside a rule.
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    /// The offending field, when known.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What was wrong and what was expected.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(r) = &self.rule {
            write!(f, "rule `{r}`: ")?;
        }
        if let Some(fl) = &self.field {
            write!(f, "field `{fl}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
struct SpannedFile {
    #[serde(default, rename = "rule")]
    rules: Vec<toml::Spanned<toml::Value>>,
}

impl RuleSet {
    /// Parses and checks a rules file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the line, the rule, the field and what was expected.
    pub fn from_toml(text: &str) -> Result<RuleSet, ConfigError> {
        let set: RuleSet = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        if let Err(e) = set.validate() {
            return Err(locate(text, e));
        }
        Ok(set)
    }

    /// Checks a rules file and reports every problem found, not only the first: each rule is
    /// checked on its own (with the file's `[scoring]` and packs), then the rest of the file,
    /// then duplicate ids. An empty list means [`RuleSet::from_toml`] accepts the text. A TOML
    /// syntax error stops the check there: what follows it cannot be read reliably.
    ///
    /// ```
    /// use tower_siem::RuleSet;
    ///
    /// let text = "[[rule]]\nid = \"a\"\nkind = \"threshold\"\non = [\"auth.failure\"]\nkey = \"ip\"\n\
    ///             count = 0\nwindow = \"1m\"\nscore = 10\n\n[[rule]]\nid = \"b\"\nkind = \"bogus\"\n";
    /// let errors = RuleSet::check_toml(text);
    /// assert_eq!(errors.len(), 2);
    /// assert_eq!((errors[0].line(), errors[0].field_name()), (Some(6), Some("count")));
    /// assert_eq!(errors[1].line(), Some(12));
    /// ```
    pub fn check_toml(text: &str) -> Vec<ConfigError> {
        if RuleSet::from_toml(text).is_ok() {
            return Vec::new();
        }
        let file = match toml::from_str::<SpannedFile>(text) {
            Ok(f) => f,
            Err(e) => return vec![toml_error(text, &e)],
        };
        let spans: Vec<std::ops::Range<usize>> = file.rules.iter().map(|r| r.span()).collect();
        // The text with every rule table but `keep` blanked out; line numbers stay put.
        let blanked = |keep: Option<usize>| -> String {
            let mut b = text.as_bytes().to_vec();
            for (i, span) in spans.iter().enumerate() {
                if Some(i) == keep {
                    continue;
                }
                let end = span.end.min(b.len());
                for c in &mut b[span.start.min(end)..end] {
                    if *c != b'\n' {
                        *c = b' ';
                    }
                }
            }
            // Only whole UTF-8 sequences were replaced, by ASCII spaces.
            String::from_utf8(b).unwrap_or_default()
        };
        let mut errors: Vec<ConfigError> = Vec::new();
        let mut push = |e: ConfigError| {
            if !errors.contains(&e) {
                errors.push(e);
            }
        };
        for i in 0..spans.len() {
            if let Err(e) = RuleSet::from_toml(&blanked(Some(i))) {
                push(e);
            }
        }
        if let Err(e) = RuleSet::from_toml(&blanked(None)) {
            push(e);
        }
        let mut ids = std::collections::HashSet::new();
        for r in &file.rules {
            if let Some(id) = r.get_ref().get("id").and_then(|v| v.as_str()) {
                if !ids.insert(id) {
                    push(
                        ConfigError::new(format!("duplicate rule id `{id}`"))
                            .in_rule(id)
                            .field("id")
                            .at_line(line_of(text, r.span().start)),
                    );
                }
            }
        }
        if errors.is_empty() {
            if let Err(e) = RuleSet::from_toml(text) {
                errors.push(e);
            }
        }
        errors.sort_by_key(|e| e.line().unwrap_or(usize::MAX));
        errors
    }

    /// Reads, parses and checks a rules file.
    ///
    /// # Errors
    /// The file cannot be read, or see [`RuleSet::from_toml`].
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<RuleSet, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(format!("cannot read {}: {e}", path.display())))?;
        RuleSet::from_toml(&text)
    }

    /// The set as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Adds a rule (builder style, for rules written in code).
    pub fn with_rule(mut self, rule: RuleConfig) -> Self {
        self.rules.push(rule);
        self
    }

    /// Removes the rule with this id, if any.
    pub fn without_rule(mut self, id: &str) -> Self {
        self.rules.retain(|r| r.id != id);
        self
    }

    /// The rule with this id.
    pub fn rule_mut(&mut self, id: &str) -> Option<&mut RuleConfig> {
        self.rules.iter_mut().find(|r| r.id == id)
    }

    /// Checks the set without a source file (line numbers unknown).
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.scoring;
        let positive = |v: f64, f: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ConfigError::new(format!("expected a positive number, found {v}")).field(f))
            }
        };
        positive(s.step_up, "scoring.step_up")?;
        positive(s.throttle, "scoring.throttle")?;
        positive(s.block, "scoring.block")?;
        if !(s.step_up <= s.throttle && s.throttle <= s.block) {
            return Err(ConfigError::new("expected step_up <= throttle <= block").field("scoring"));
        }
        if s.half_life.0.is_zero() {
            return Err(
                ConfigError::new("expected a duration above zero").field("scoring.half_life")
            );
        }
        let builtin = crate::signature::builtin_packs();
        let mut ids = std::collections::HashSet::new();
        for r in &self.rules {
            let e = |f: &str, m: String| Err(ConfigError::new(m).in_rule(&r.id).field(f));
            if r.id.trim().is_empty() {
                return e("id", "expected a non-empty rule id".into());
            }
            if !ids.insert(r.id.as_str()) {
                return e("id", format!("duplicate rule id `{}`", r.id));
            }
            if let Some(sc) = r.score {
                if !sc.is_finite() || sc < 0.0 {
                    return e("score", format!("expected a number >= 0, found {sc}"));
                }
            }
            let needs_on = !matches!(r.kind, RuleKind::Signature);
            if needs_on && r.on.is_empty() {
                return e(
                    "on",
                    "expected a list of event names, e.g. [\"auth.failure\"]".into(),
                );
            }
            match r.kind {
                RuleKind::Threshold | RuleKind::Distinct => {
                    if r.key.is_none() {
                        return e(
                            "key",
                            "expected one of \"ip\", \"user\", \"session\", \"device\"".into(),
                        );
                    }
                    match r.count {
                        Some(c) if (1..=10_000).contains(&c) => {}
                        Some(c) => {
                            return e(
                                "count",
                                format!("expected an integer from 1 to 10000, found {c}"),
                            )
                        }
                        None => return e("count", format!("required for kind {:?}", r.kind)),
                    }
                    match r.window {
                        Some(w) if !w.0.is_zero() => {}
                        _ => {
                            return e(
                                "window",
                                "expected a duration above zero, like \"10m\"".into(),
                            )
                        }
                    }
                    if r.score.is_none() {
                        return e(
                            "score",
                            "expected a number (the score added when the rule fires)".into(),
                        );
                    }
                    if r.kind == RuleKind::Distinct && r.field.is_none() {
                        return e(
                            "field",
                            "expected the field whose distinct values are counted".into(),
                        );
                    }
                }
                RuleKind::Signature => {
                    let Some(p) = &r.pack else {
                        return e("pack", "expected a signature pack id".into());
                    };
                    if p != super::DUPLICATE_HEADER_PACK
                        && !builtin.iter().any(|b| &b.id == p)
                        && !self.packs.iter().any(|b| &b.id == p)
                    {
                        let known: Vec<_> = builtin
                            .iter()
                            .map(|b| b.id.as_str())
                            .chain(self.packs.iter().map(|b| b.id.as_str()))
                            .collect();
                        return e(
                            "pack",
                            format!("unknown pack `{p}`; expected one of {}", known.join(", ")),
                        );
                    }
                    if r.score.is_none() {
                        return e(
                            "score",
                            "expected a number (the score added on a match)".into(),
                        );
                    }
                }
                RuleKind::Novelty => {
                    if r.key.is_none() {
                        return e(
                            "key",
                            "expected one of \"ip\", \"user\", \"session\", \"device\"".into(),
                        );
                    }
                    if r.field.is_none() {
                        return e("field", "expected the field whose new values are flagged (\"network\", \"device\", …)".into());
                    }
                    if r.score.is_none() {
                        return e("score", "expected a number".into());
                    }
                    if let Some(a) = &r.after {
                        if a.on.is_empty() || a.count == 0 || a.window.0.is_zero() {
                            return e(
                                "after",
                                "expected `on` events, a `count` >= 1 and a `window` above zero"
                                    .into(),
                            );
                        }
                    }
                }
                RuleKind::Relief => match r.keep {
                    Some(k) if (0.0..=1.0).contains(&k) => {}
                    _ => return e("keep", "expected a fraction from 0 to 1".into()),
                },
            }
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let mut err = ConfigError::new(e.message().trim().to_owned());
    if let Some(span) = e.span() {
        err = err.at_line(line_of(text, span.start));
    }
    // Name the field when serde says which one.
    if let Some(f) = e.message().split('`').nth(1) {
        if e.message().contains("field") || e.message().contains("invalid") {
            err.field.get_or_insert_with(|| f.to_owned());
        }
    }
    // Otherwise, a bad value: the key written before it on the same line.
    if err.field.is_none() {
        if let Some(key) = e.span().and_then(|span| key_before(text, span.start)) {
            err.field = Some(key.to_owned());
        }
    }
    err
}

/// The `key` of a `key = value` line whose value starts at byte `at`.
fn key_before(text: &str, at: usize) -> Option<&str> {
    let head = text.get(..at)?;
    let line = &head[head.rfind('\n').map_or(0, |i| i + 1)..];
    let key = line.trim_end().strip_suffix('=')?.trim();
    let key = key.rsplit('.').next()?.trim().trim_matches('"');
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(key)
}

/// Finds the line of a semantic error: the rule's table, then the field's line inside it.
fn locate(text: &str, mut err: ConfigError) -> ConfigError {
    let Ok(file) = toml::from_str::<SpannedFile>(text) else {
        return err;
    };
    let field = err.field.clone();
    if let Some(rule) = err.rule.clone() {
        for r in &file.rules {
            if r.get_ref().get("id").and_then(|v| v.as_str()) == Some(rule.as_str()) {
                let span = r.span();
                err.line = Some(line_of(text, span.start));
                if let Some(f) = &field {
                    let body = &text[span.start.min(text.len())..span.end.min(text.len())];
                    let mut off = span.start;
                    for l in body.split_inclusive('\n') {
                        let t = l.trim_start();
                        if t.starts_with(f.as_str()) && t[f.len()..].trim_start().starts_with('=') {
                            err.line = Some(line_of(text, off));
                            break;
                        }
                        off += l.len();
                    }
                }
                break;
            }
        }
    } else if let Some(f) = field {
        let leaf = f.rsplit('.').next().unwrap_or(&f);
        let mut off = 0;
        for l in text.split_inclusive('\n') {
            let t = l.trim_start();
            if t.starts_with(leaf) && t[leaf.len()..].trim_start().starts_with('=') {
                err.line = Some(line_of(text, off));
                break;
            }
            off += l.len();
        }
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_rules_parse_and_cover_every_kind() {
        let set = RuleSet::from_toml(DEFAULT_RULES).unwrap();
        for k in [
            RuleKind::Threshold,
            RuleKind::Distinct,
            RuleKind::Signature,
            RuleKind::Novelty,
            RuleKind::Relief,
        ] {
            assert!(set.rules.iter().any(|r| r.kind == k), "no {k:?} rule");
        }
        let back = RuleSet::from_toml(&set.to_toml()).unwrap();
        assert_eq!(back, set, "TOML round trip");
    }

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("500ms").unwrap().millis(), 500);
        assert_eq!(Dur::parse("10m").unwrap().millis(), 600_000);
        assert_eq!(Dur::parse("1.5h").unwrap().millis(), 5_400_000);
        assert!(Dur::parse("10 parsecs").is_err());
        assert!(Dur::parse("-1s").is_err());
        assert_eq!(Dur::parse("90s").unwrap().to_string(), "90s");
    }

    #[test]
    fn errors_name_line_field_and_expectation() {
        let text = "[scoring]\nstep_up = 30\n\n[[rule]]\nid = \"a\"\nkind = \"threshold\"\non = [\"auth.failure\"]\nkey = \"ip\"\ncount = 0\nwindow = \"1m\"\nscore = 10\n";
        let e = RuleSet::from_toml(text).unwrap_err();
        assert_eq!(
            (e.line(), e.rule(), e.field_name()),
            (Some(9), Some("a"), Some("count")),
            "{e}"
        );
        assert!(e.to_string().contains("expected an integer"), "{e}");

        let e = RuleSet::from_toml("[[rule]]\nid = \"a\"\nkind = \"thresold\"\n").unwrap_err();
        assert_eq!(e.line(), Some(3), "{e}");
        assert!(
            e.to_string().contains("threshold"),
            "lists the valid kinds: {e}"
        );

        let e = RuleSet::from_toml("[[rule]]\nid = \"a\"\nkind = \"threshold\"\ncuont = 3\n")
            .unwrap_err();
        assert_eq!(e.line(), Some(4), "{e}");
        assert_eq!(e.field_name(), Some("cuont"), "{e}");

        let e = RuleSet::from_toml(
            "[[rule]]\nid = \"s\"\nkind = \"signature\"\npack = \"nope\"\nscore = 1\n",
        )
        .unwrap_err();
        assert_eq!((e.line(), e.field_name()), (Some(4), Some("pack")), "{e}");
        assert!(e.to_string().contains("sqli"), "lists known packs: {e}");

        let e = RuleSet::from_toml("[scoring]\nhalf_life = \"soon\"\n").unwrap_err();
        assert_eq!(e.line(), Some(2), "{e}");
    }
}
