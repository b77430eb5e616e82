//! Rules as data: the TOML rules file and the same structure built from code.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Action;
use crate::signature::Pack;

/// The built-in rule pack, as TOML. [`RuleSet::default`] parses it; the README explains each
/// number.
pub const DEFAULT_RULES: &str = include_str!("default_rules.toml");

/// A whole rule set: scoring parameters, custom signature packs and rules.
///
/// [`RuleSet::default`] is the built-in pack ([`DEFAULT_RULES`]). A rules file read by
/// [`RuleSet::from_toml`] (and so by [`SiemBuilder::rules_file`](crate::SiemBuilder::rules_file)
/// and `tower-siem rules check`) **extends** that pack:
///
/// - a `[[rule]]` whose `id` is a built-in rule's overrides it, and only the fields it names
///   (`id = "auth.bruteforce.user"` with `count = 6` keeps the built-in kind, events, key,
///   window and score); `enabled = false` switches it off;
/// - a `[[rule]]` with a new id adds a rule (it then needs every field its kind requires);
/// - `[scoring]` fields override the built-in ones, one by one;
/// - `builtin = false` at the top of the file drops the built-in pack: the file is then the
///   whole set.
///
/// A set in which no rule is active (enabled, not in shadow mode, and not a `relief` rule) is
/// refused: every detection would be off. Every number has a bound (see the fields of
/// [`RuleConfig`], [`After`], [`Scoring`] and [`SubnetEscalation`]), and
/// [`RuleSet::memory_estimate`] tells the memory the rules' per-key state may take.
///
/// A set built in code (`RuleSet::default().with_rule(..)`) is taken as it is, and
/// [`RuleSet::to_toml`] writes a self-contained file (`builtin = false` and every rule) that
/// reads back as the same set. (The derived serde impls are the complete set, with no merging
/// and no `builtin` key; read files with [`RuleSet::from_toml`].)
///
/// ```
/// use tower_siem::engine::RuleSet;
/// // Extends the built-in pack: one new rule, one built-in rule made stricter.
/// let rules = RuleSet::from_toml(r#"
/// [[rule]]
/// id = "login.bruteforce"
/// kind = "threshold"
/// on = ["auth.failure"]
/// key = "ip"
/// count = 5
/// window = "1m"
/// score = 50
///
/// [[rule]]
/// id = "auth.bruteforce.user"
/// count = 3
/// "#).unwrap();
/// assert_eq!(rules.rules.len(), RuleSet::default().rules.len() + 1);
/// let user = rules.rules.iter().find(|r| r.id == "auth.bruteforce.user").unwrap();
/// assert_eq!((user.count, user.score), (Some(3), Some(20.0)));
///
/// // Only these rules.
/// let only = RuleSet::from_toml(r#"
/// builtin = false
///
/// [[rule]]
/// id = "login.bruteforce"
/// kind = "threshold"
/// on = ["auth.failure"]
/// key = "ip"
/// count = 5
/// window = "1m"
/// score = 50
/// "#).unwrap();
/// assert_eq!(only.rules.len(), 1);
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
    /// The built-in pack.
    fn default() -> Self {
        // The built-in file is checked by a unit test; failing here would be a build defect.
        RuleSet::parse(DEFAULT_RULES, None, true).expect("built-in rules parse")
    }
}

/// Score decay and the thresholds that turn a score into an action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scoring {
    /// Scores halve every `half_life` (1 s to 7 d).
    pub half_life: Dur,
    /// Score at which an entity is stepped up (above 0, at most 10,000, at most `throttle`).
    pub step_up: f64,
    /// Score at which an entity is throttled (above 0, at most 10,000, at most `block`).
    pub throttle: f64,
    /// Score at which an entity is blocked (above 0, at most 10,000).
    pub block: f64,
    /// First block duration; each repeat offence doubles it (1 s to 30 d).
    pub block_for: Dur,
    /// Longest block (from `block_for` to 30 d).
    pub max_block_for: Dur,
    /// Strongest automatic action per entity kind. Users and devices default to `step_up`: the
    /// victim of an attack on their account must never be locked out by the attacker.
    pub max_action: MaxAction,
    /// The highest score an entity can reach (default 200, twice `block`): however long an
    /// attack goes on, the time back to `allow` after it stops is bounded by
    /// `half_life × log2(max_score / step_up)` (41 minutes with the defaults), plus any block
    /// still running. From `block` to 10 × `block`.
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
    /// Distinct blocked client keys within one network needed (default 3; 2 to 256).
    pub count: u32,
    /// Within this long (default 10 minutes; 1 s to 30 d).
    pub window: Dur,
    /// IPv4 networks of this prefix (default /24; /8 to /32).
    pub ipv4_prefix: u8,
    /// IPv6 networks of this prefix (default /48; /16 to /128).
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

/// One rule. Which fields apply depends on `kind`; [`RuleSet::validate`] checks them, and the
/// bounds of every number.
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
    /// Events (threshold) or distinct values (distinct) needed: 1 to 10,000. Each key keeps
    /// up to `count` timestamps (threshold) or `count` values (distinct).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Sliding window length: 1 s to 30 d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Dur>,
    /// The value a distinct or novelty rule looks at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<ValueField>,
    /// Score added to the target each time the rule fires: 0 to 1,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Only events with one of these HTTP statuses (each 100 to 599).
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
    /// Novelty: how many known values to remember per key: 1 to 1,024 (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember: Option<u32>,
    /// Relief: fraction of the score to keep, 0 to 1 (0 clears it).
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
    /// How many: 1 to 10,000 (each key keeps up to `count` timestamps).
    pub count: u32,
    /// Within this long before the novel event: 1 s to 30 d.
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

/// A rules file as written: every rule field optional, so that a table naming a built-in rule
/// can override only some of its fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    /// `false` drops the built-in pack.
    #[serde(default)]
    builtin: Option<bool>,
    #[serde(default)]
    scoring: Option<Scoring>,
    #[serde(default, rename = "pack")]
    packs: Vec<Pack>,
    #[serde(default, rename = "rule")]
    rules: Vec<toml::Spanned<RulePatch>>,
}

/// One `[[rule]]` table of a rules file: a new rule, or the fields of a built-in rule to change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulePatch {
    id: String,
    kind: Option<RuleKind>,
    description: Option<String>,
    on: Option<Vec<String>>,
    key: Option<EntityKind>,
    target: Option<EntityKind>,
    count: Option<u32>,
    window: Option<Dur>,
    field: Option<ValueField>,
    score: Option<f64>,
    status: Option<Vec<u16>>,
    gate: Option<Action>,
    pack: Option<String>,
    after: Option<AfterPatch>,
    remember: Option<u32>,
    keep: Option<f64>,
    shadow: Option<bool>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AfterPatch {
    on: Option<Vec<String>>,
    count: Option<u32>,
    window: Option<Dur>,
}

impl RulePatch {
    /// The rule `base` (a built-in rule with the same id) with the fields named here changed,
    /// or, without a base, the new rule written here.
    fn apply(self, base: Option<RuleConfig>) -> Result<RuleConfig, ConfigError> {
        let id = self.id;
        let err = |f: &str, m: &str| ConfigError::new(m).in_rule(&id).field(f);
        let mut r =
            match (base, self.kind) {
                (Some(b), Some(k)) => RuleConfig { kind: k, ..b },
                (Some(b), None) => b,
                (None, Some(k)) => RuleConfig::new(id.clone(), k),
                (None, None) => return Err(err(
                    "kind",
                    "expected a kind (\"threshold\", \"distinct\", \"signature\", \"novelty\" or \
                     \"relief\"): this id is not a built-in rule's, so the table adds a new rule \
                     (check the id if it was meant to change a built-in rule)",
                )),
            };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { r.$f = v; } )* };
        }
        macro_rules! set_opt {
            ($($f:ident),*) => { $( if self.$f.is_some() { r.$f = self.$f; } )* };
        }
        set!(description, on, status, shadow, enabled);
        set_opt!(key, target, count, window, field, score, gate, pack, remember, keep);
        if let Some(a) = self.after {
            r.after = Some(match r.after.take() {
                Some(b) => After {
                    on: a.on.unwrap_or(b.on),
                    count: a.count.unwrap_or(b.count),
                    window: a.window.unwrap_or(b.window),
                },
                None => match (a.on, a.count, a.window) {
                    (Some(on), Some(count), Some(window)) => After { on, count, window },
                    _ => {
                        return Err(err(
                            "after",
                            "expected `on` events, a `count` and a `window`, e.g. \
                             { on = [\"auth.failure\"], count = 4, window = \"1h\" }",
                        ))
                    }
                },
            });
        }
        Ok(r)
    }
}

impl RuleSet {
    /// Parses and checks a rules file. The file extends the built-in pack (see [`RuleSet`]):
    /// a rule with a built-in id overrides the fields it names, a new id adds a rule,
    /// `[scoring]` fields override the built-in ones, and `builtin = false` drops the pack.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the line, the rule, the field and what was expected; a bound
    /// exceeded (see [`RuleSet::validate`]); no active rule left.
    pub fn from_toml(text: &str) -> Result<RuleSet, ConfigError> {
        RuleSet::parse(text, Some(&RuleSet::default()), true)
    }

    /// Parses `text` over `base` (`None`: the file alone), then validates the result, locating
    /// errors in `text`. `require_active` off checks a part of a file (see `check_toml`).
    fn parse(
        text: &str,
        base: Option<&RuleSet>,
        require_active: bool,
    ) -> Result<RuleSet, ConfigError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        let mut set = match base {
            Some(b) if file.builtin != Some(false) => b.clone(),
            _ => RuleSet {
                scoring: Scoring::default(),
                packs: Vec::new(),
                rules: Vec::new(),
            },
        };
        // Fields a `[scoring]` table leaves out take their defaults, which are the built-in
        // pack's (a unit test keeps the two equal).
        if let Some(scoring) = file.scoring {
            set.scoring = scoring;
        }
        set.packs.extend(file.packs);
        let mut seen = std::collections::HashSet::new();
        for spanned in file.rules {
            let line = line_of(text, spanned.span().start);
            let patch = spanned.into_inner();
            let id = patch.id.clone();
            if !seen.insert(id.clone()) {
                return Err(ConfigError::new(format!("duplicate rule id `{id}`"))
                    .in_rule(&id)
                    .field("id")
                    .at_line(line));
            }
            let at = set.rules.iter().position(|r| r.id == id);
            let rule = patch
                .apply(at.map(|i| set.rules[i].clone()))
                .map_err(|e| locate(text, e))?;
            match at {
                Some(i) => set.rules[i] = rule,
                None => set.rules.push(rule),
            }
        }
        set.check(require_active).map_err(|e| locate(text, e))?;
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
        let whole = match RuleSet::from_toml(text) {
            Ok(_) => return Vec::new(),
            Err(e) => e,
        };
        let base = RuleSet::default();
        let part = |t: &str| RuleSet::parse(t, Some(&base), false);
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
            if let Err(e) = part(&blanked(Some(i))) {
                push(e);
            }
        }
        if let Err(e) = part(&blanked(None)) {
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
            errors.push(whole);
        }
        errors.sort_by_key(|e| e.line().unwrap_or(usize::MAX));
        errors
    }

    /// Reads, parses and checks a rules file: [`RuleSet::from_toml`] on its text (the file
    /// extends the built-in pack unless it sets `builtin = false`).
    ///
    /// # Errors
    /// The file cannot be read, or see [`RuleSet::from_toml`].
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<RuleSet, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(format!("cannot read {}: {e}", path.display())))?;
        RuleSet::from_toml(&text)
    }

    /// The set as a self-contained rules file: `builtin = false`, then the scoring, packs and
    /// every rule, so that [`RuleSet::from_toml`] reads it back as this very set.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!("builtin = false\n\n{body}")
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

    /// Checks the set without a source file (line numbers unknown): required fields, the
    /// bounds of every number, and that at least one rule is active.
    ///
    /// | field | bound |
    /// |---|---|
    /// | rule `count`, `after.count` | 1 to 10,000 |
    /// | rule `remember` | 1 to 1,024 |
    /// | rule `score` | 0 to 1,000 |
    /// | rule `window`, `after.window` | 1 s to 30 d |
    /// | rule `status` | 100 to 599 each |
    /// | rule `keep` | 0 to 1 |
    /// | `scoring.step_up` ≤ `throttle` ≤ `block` | above 0, at most 10,000 |
    /// | `scoring.max_score` | `block` to 10 × `block` |
    /// | `scoring.half_life` | 1 s to 7 d |
    /// | `scoring.block_for` ≤ `max_block_for` | 1 s to 30 d |
    /// | `scoring.subnet.count` | 2 to 256 |
    /// | `scoring.subnet.window` | 1 s to 30 d |
    /// | `scoring.subnet.ipv4_prefix`, `ipv6_prefix` | /8 to /32, /16 to /128 |
    ///
    /// ```
    /// use tower_siem::engine::RuleSet;
    ///
    /// let mut rules = RuleSet::default();
    /// rules.rule_mut("auth.takeover").unwrap().after.as_mut().unwrap().count = 4_000_000_000;
    /// let err = rules.validate().unwrap_err();
    /// assert_eq!((err.rule(), err.field_name()), (Some("auth.takeover"), Some("after.count")));
    /// assert!(err.message().contains("1 to 10000"), "{err}");
    /// ```
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check(true)
    }

    fn check(&self, require_active: bool) -> Result<(), ConfigError> {
        self.scoring.check()?;
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
            let in_rule = |res: Result<(), ConfigError>| res.map_err(|err| err.in_rule(&r.id));
            if let Some(sc) = r.score {
                in_rule(check_score(sc, "score", MAX_RULE_SCORE))?;
            }
            if let Some(c) = r.count {
                in_rule(check_int(
                    c,
                    "count",
                    1,
                    MAX_COUNT,
                    "each key keeps up to `count` timestamps or values",
                ))?;
            }
            if let Some(w) = r.window {
                in_rule(check_dur(w, "window", MIN_WINDOW, MAX_WINDOW))?;
            }
            if let Some(m) = r.remember {
                in_rule(check_int(
                    m,
                    "remember",
                    1,
                    MAX_REMEMBER,
                    "each key keeps up to `remember` values",
                ))?;
            }
            if let Some(k) = r.keep {
                if !(0.0..=1.0).contains(&k) {
                    return e(
                        "keep",
                        format!("expected a fraction from 0 to 1, found {k}"),
                    );
                }
            }
            if let Some(s) = r.status.iter().find(|s| !(100..=599).contains(*s)) {
                return e(
                    "status",
                    format!("expected HTTP statuses from 100 to 599, found {s}"),
                );
            }
            if let Some(a) = &r.after {
                if a.on.is_empty() {
                    return e(
                        "after.on",
                        "expected a list of event names, e.g. [\"auth.failure\"]".into(),
                    );
                }
                in_rule(check_int(
                    a.count,
                    "after.count",
                    1,
                    MAX_COUNT,
                    "each key keeps up to `after.count` timestamps",
                ))?;
                in_rule(check_dur(a.window, "after.window", MIN_WINDOW, MAX_WINDOW))?;
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
                    if r.count.is_none() {
                        return e(
                            "count",
                            format!(
                                "required for kind {:?}: an integer from 1 to {MAX_COUNT}",
                                r.kind
                            ),
                        );
                    }
                    if r.window.is_none() {
                        return e(
                            "window",
                            "expected a duration from 1s to 30d, like \"10m\"".into(),
                        );
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
                }
                RuleKind::Relief => {
                    if r.keep.is_none() {
                        return e("keep", "expected a fraction from 0 to 1".into());
                    }
                }
            }
        }
        if require_active && !self.rules.iter().any(RuleConfig::is_active) {
            return Err(ConfigError::new(
                "no active rule: every detection would be off; enable at least one detection \
                 rule (not `shadow`, not a `relief` rule), or keep the built-in pack (a rules \
                 file extends it unless it sets `builtin = false`)",
            ));
        }
        Ok(())
    }

    /// Bytes the rules' per-key state may take at most when every rule holds `window_capacity`
    /// keys (the engine's [`EngineConfig::window_capacity`](super::EngineConfig), 65,536 by
    /// default): the sum of [`RuleConfig::memory_estimate`] over the rules. The engine
    /// allocates a key's buffers as its events arrive, so this is a ceiling, reached only when
    /// every key of every rule is full.
    ///
    /// ```
    /// use tower_siem::engine::RuleSet;
    ///
    /// let rules = RuleSet::default();
    /// let bytes = rules.memory_estimate(65_536);
    /// assert!(bytes > 1 << 20 && bytes < 1 << 30, "{bytes}");
    /// ```
    pub fn memory_estimate(&self, window_capacity: usize) -> u64 {
        self.rules
            .iter()
            .map(|r| r.memory_estimate(window_capacity))
            .fold(0u64, u64::saturating_add)
    }
}

/// Most events (threshold), values (distinct) or preceding events (novelty `after`) a rule keeps
/// per key.
const MAX_COUNT: u32 = 10_000;
/// Most values a novelty rule remembers per key.
const MAX_REMEMBER: u32 = 1_024;
/// Highest score one rule adds.
const MAX_RULE_SCORE: f64 = 1_000.0;
/// Highest `step_up`, `throttle` or `block` threshold.
const MAX_THRESHOLD: f64 = 10_000.0;
const SECOND: Duration = Duration::from_secs(1);
const MIN_WINDOW: Duration = SECOND;
const MAX_WINDOW: Duration = Duration::from_secs(30 * 86_400);
const MAX_HALF_LIFE: Duration = Duration::from_secs(7 * 86_400);

fn check_int(v: u32, f: &str, lo: u32, hi: u32, why: &str) -> Result<(), ConfigError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "expected an integer from {lo} to {hi}, found {v} ({why})"
        ))
        .field(f))
    }
}

fn check_score(v: f64, f: &str, hi: f64) -> Result<(), ConfigError> {
    if v.is_finite() && (0.0..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::new(format!("expected a number from 0 to {hi}, found {v}")).field(f))
    }
}

fn check_dur(v: Dur, f: &str, lo: Duration, hi: Duration) -> Result<(), ConfigError> {
    if (lo..=hi).contains(&v.0) {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "expected a duration from {} to {}, found {v}",
            Dur(lo),
            Dur(hi)
        ))
        .field(f))
    }
}

impl Scoring {
    fn check(&self) -> Result<(), ConfigError> {
        for (v, f) in [
            (self.step_up, "scoring.step_up"),
            (self.throttle, "scoring.throttle"),
            (self.block, "scoring.block"),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= MAX_THRESHOLD) {
                return Err(ConfigError::new(format!(
                    "expected a number above 0 and at most {MAX_THRESHOLD}, found {v}"
                ))
                .field(f));
            }
        }
        if !(self.step_up <= self.throttle && self.throttle <= self.block) {
            return Err(ConfigError::new(format!(
                "expected step_up <= throttle <= block, found {} / {} / {}",
                self.step_up, self.throttle, self.block
            ))
            .field("scoring"));
        }
        let (lo, hi) = (self.block, 10.0 * self.block);
        if !(self.max_score.is_finite() && (lo..=hi).contains(&self.max_score)) {
            return Err(ConfigError::new(format!(
                "expected a number from `block` to 10 × `block` ({lo} to {hi}), found {}",
                self.max_score
            ))
            .field("scoring.max_score"));
        }
        check_dur(self.half_life, "scoring.half_life", SECOND, MAX_HALF_LIFE)?;
        check_dur(self.block_for, "scoring.block_for", SECOND, MAX_WINDOW)?;
        check_dur(
            self.max_block_for,
            "scoring.max_block_for",
            self.block_for.0,
            MAX_WINDOW,
        )
        .map_err(|e| {
            let m = format!("{} (it must be at least `block_for`)", e.message);
            ConfigError { message: m, ..e }
        })?;
        let n = &self.subnet;
        check_int(
            n.count,
            "scoring.subnet.count",
            2,
            256,
            "distinct blocked keys of one network",
        )?;
        check_dur(n.window, "scoring.subnet.window", SECOND, MAX_WINDOW)?;
        check_int(
            n.ipv4_prefix.into(),
            "scoring.subnet.ipv4_prefix",
            8,
            32,
            "an IPv4 prefix length",
        )?;
        check_int(
            n.ipv6_prefix.into(),
            "scoring.subnet.ipv6_prefix",
            16,
            128,
            "an IPv6 prefix length",
        )?;
        Ok(())
    }
}

impl RuleConfig {
    /// Whether the rule detects anything: enabled, not in shadow mode, and not a `relief` rule
    /// (which only lowers scores).
    pub fn is_active(&self) -> bool {
        self.enabled && !self.shadow && self.kind != RuleKind::Relief
    }

    /// Heap bytes one key of this rule may hold at most: `count` timestamps (threshold),
    /// `count` (hash, time) pairs (distinct), `remember` pairs plus `after.count` timestamps
    /// (novelty); nothing for signature and relief rules, which keep no per-key state.
    pub fn state_bytes_per_key(&self) -> u64 {
        const TIME: u64 = std::mem::size_of::<i64>() as u64;
        const PAIR: u64 = std::mem::size_of::<(u64, i64)>() as u64;
        let count = u64::from(self.count.unwrap_or(1));
        match self.kind {
            RuleKind::Threshold => count * TIME,
            RuleKind::Distinct => count * PAIR,
            RuleKind::Novelty => {
                u64::from(self.remember.unwrap_or(16)) * PAIR
                    + self.after.as_ref().map_or(0, |a| u64::from(a.count) * TIME)
            }
            RuleKind::Signature | RuleKind::Relief => 0,
        }
    }

    /// Bytes this rule's per-key state may take at most with `window_capacity` keys: the hash
    /// table of keys plus [`state_bytes_per_key`](RuleConfig::state_bytes_per_key) for each.
    /// Zero for a disabled rule (the engine does not compile it) and for signature and relief
    /// rules.
    pub fn memory_estimate(&self, window_capacity: usize) -> u64 {
        if !self.enabled || matches!(self.kind, RuleKind::Signature | RuleKind::Relief) {
            return 0;
        }
        let (keys, table) = key_table_bytes(window_capacity);
        keys.saturating_mul(self.state_bytes_per_key())
            .saturating_add(table)
    }
}

/// Keys and hash-table bytes of a rule's per-key map at `capacity`: sixteen shards of
/// `ceil(capacity / 16)` entries, each a std `HashMap` (a power of two of buckets at most 7/8
/// full, one control byte per bucket).
fn key_table_bytes(capacity: usize) -> (u64, u64) {
    const SHARDS: u64 = 16;
    let per_shard = (capacity as u64).div_ceil(SHARDS).max(1);
    let buckets = if per_shard < 4 {
        4
    } else if per_shard < 8 {
        8
    } else {
        (per_shard.saturating_mul(8) / 7).next_power_of_two()
    };
    let entry = std::mem::size_of::<(u64, (super::State, i64))>() as u64;
    let shard = buckets * (entry + 1) + 16;
    (per_shard * SHARDS, shard * SHARDS)
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

/// The line of `key = …` in `text[range]` (whitespace before `=` allowed), if written there.
fn key_line(text: &str, range: std::ops::Range<usize>, key: &str) -> Option<usize> {
    let start = range.start.min(text.len());
    let body = &text[start..range.end.min(text.len())];
    let mut off = start;
    for l in body.split_inclusive('\n') {
        let t = l.trim_start();
        if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            return Some(line_of(text, off));
        }
        off += l.len();
    }
    None
}

/// The byte range of the `[table]` section (`""`: the top of the file, before any table).
fn section(text: &str, table: &str) -> Option<std::ops::Range<usize>> {
    let mut off = 0;
    let mut start = table.is_empty().then_some(0);
    for l in text.split_inclusive('\n') {
        let h = l.trim();
        if h.starts_with('[') {
            if let Some(s) = start {
                return Some(s..off);
            }
            if h.trim_start_matches('[').trim_end_matches(']').trim() == table {
                start = Some(off);
            }
        }
        off += l.len();
    }
    start.map(|s| s..text.len())
}

/// Finds the line of a semantic error: the rule's table, then the field's line inside it
/// (`after.count`: the `count` key or else the `after` line); a `scoring.…` field in its
/// `[scoring…]` table.
fn locate(text: &str, mut err: ConfigError) -> ConfigError {
    if err.line.is_some() {
        return err;
    }
    let Ok(file) = toml::from_str::<SpannedFile>(text) else {
        return err;
    };
    let field = err.field.clone();
    if let Some(rule) = err.rule.clone() {
        for r in &file.rules {
            if r.get_ref().get("id").and_then(|v| v.as_str()) == Some(rule.as_str()) {
                let mut span = r.span();
                err.line = Some(line_of(text, span.start));
                // Sub-tables (`[rule.after]`) follow the span, up to the next `[[`.
                let rest = text.get(span.start + 1..).unwrap_or("");
                span.end = rest
                    .find("\n[[")
                    .map_or(text.len(), |i| span.start + 1 + i)
                    .max(span.end);
                if let Some(f) = &field {
                    let head = f.split('.').next().unwrap_or(f);
                    let leaf = f.rsplit('.').next().unwrap_or(f);
                    let found = key_line(text, span.clone(), f)
                        .or_else(|| {
                            // `after = { … }` on one line, or an `after` sub-table.
                            key_line(text, span.clone(), head).filter(|_| head != f.as_str())
                        })
                        .or_else(|| {
                            (head != f.as_str())
                                .then(|| key_line(text, span.clone(), leaf))
                                .flatten()
                        });
                    if let Some(l) = found {
                        err.line = Some(l);
                    }
                }
                break;
            }
        }
    } else if let Some(f) = field {
        // `scoring.subnet.count`: `count` in `[scoring.subnet]`, `subnet.count` in `[scoring]`,
        // `scoring.subnet.count` at the top; else any `count` line.
        let segs: Vec<&str> = f.split('.').collect();
        let found = (0..segs.len()).rev().find_map(|i| {
            let key = segs[i..].join(".");
            let range = section(text, &segs[..i].join("."))?;
            key_line(text, range, &key)
        });
        let leaf = segs.last().copied().unwrap_or_default();
        err.line = found.or_else(|| key_line(text, 0..text.len(), leaf));
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

    /// A threshold rule with the given extra lines (they come last, from line 8 on).
    fn rule(extra: &str) -> String {
        format!(
            "builtin = false\n\n[[rule]]\nid = \"r\"\nkind = \"threshold\"\non = [\"auth.failure\"]\nkey = \"ip\"\n{extra}"
        )
    }

    #[track_caller]
    fn refused(text: &str, field: &str, line: usize, says: &[&str]) {
        let e = RuleSet::from_toml(text).unwrap_err();
        assert_eq!(
            (e.field_name(), e.line()),
            (Some(field), Some(line)),
            "{e}\n{text}"
        );
        for s in says {
            assert!(e.to_string().contains(s), "{e} does not say {s:?}");
        }
    }

    #[test]
    fn the_issue_novelty_count_is_refused() {
        // Accepted before, and the first failed login then asked for a 32 GB buffer.
        let text = "[[rule]]\nid = \"auth.takeover\"\nafter = { on = [\"auth.failure\"], count = 4000000000, window = \"1h\" }\n";
        let e = RuleSet::from_toml(text).unwrap_err();
        assert_eq!(
            (e.line(), e.rule(), e.field_name()),
            (Some(3), Some("auth.takeover"), Some("after.count")),
            "{e}"
        );
        assert!(
            e.to_string().contains("from 1 to 10000, found 4000000000"),
            "{e}"
        );
        // The same through a partial `after`, which keeps the built-in `on` and `window`.
        let e = RuleSet::from_toml(
            "[[rule]]\nid = \"auth.takeover\"\n\n[rule.after]\ncount = 4000000000\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.line(), e.field_name()),
            (Some(5), Some("after.count")),
            "{e}"
        );
        let ok =
            RuleSet::from_toml("[[rule]]\nid = \"auth.takeover\"\nafter = { count = 10000 }\n")
                .unwrap();
        let a = ok.rules.iter().find(|r| r.id == "auth.takeover").unwrap();
        let a = a.after.as_ref().unwrap();
        assert_eq!(
            (a.count, a.window.to_string(), a.on.len()),
            (10_000, "1h".into(), 1)
        );
    }

    #[test]
    fn every_number_is_bounded() {
        let base = "window = \"1m\"\nscore = 10\n";
        for (extra, field, says) in [
            ("count = 0\n", "count", "from 1 to 10000, found 0"),
            ("count = 10001\n", "count", "from 1 to 10000, found 10001"),
            (
                "score = 1001\ncount = 3\nwindow = \"1m\"\n",
                "score",
                "from 0 to 1000, found 1001",
            ),
            (
                "score = -1\ncount = 3\nwindow = \"1m\"\n",
                "score",
                "found -1",
            ),
            (
                "window = \"31d\"\ncount = 3\nscore = 1\n",
                "window",
                "from 1s to 30d, found 31d",
            ),
            (
                "window = \"500ms\"\ncount = 3\nscore = 1\n",
                "window",
                "found 500ms",
            ),
            (
                "status = [404, 600]\ncount = 3\nwindow = \"1m\"\nscore = 1\n",
                "status",
                "100 to 599, found 600",
            ),
            (
                "remember = 0\ncount = 3\nwindow = \"1m\"\nscore = 1\n",
                "remember",
                "from 1 to 1024, found 0",
            ),
            (
                "remember = 1025\ncount = 3\nwindow = \"1m\"\nscore = 1\n",
                "remember",
                "found 1025",
            ),
            (
                "keep = 1.5\ncount = 3\nwindow = \"1m\"\nscore = 1\n",
                "keep",
                "from 0 to 1, found 1.5",
            ),
        ] {
            refused(&rule(extra), field, 8, &[says, "rule `r`"]);
        }
        let ok = rule(&format!(
            "count = 10000\nremember = 1024\nstatus = [100, 599]\n{base}"
        ));
        RuleSet::from_toml(&ok).unwrap();
        let novelty = |after: &str| {
            format!("[[rule]]\nid = \"n\"\nkind = \"novelty\"\non = [\"auth.success\"]\nkey = \"user\"\nfield = \"network\"\nscore = 1\nafter = {after}\n")
        };
        refused(
            &novelty("{ on = [\"a\"], count = 0, window = \"1h\" }"),
            "after.count",
            8,
            &["found 0"],
        );
        refused(
            &novelty("{ on = [\"a\"], count = 3, window = \"40d\" }"),
            "after.window",
            8,
            &["found 40d"],
        );
        refused(
            &novelty("{ on = [], count = 3, window = \"1h\" }"),
            "after.on",
            8,
            &["event names"],
        );

        for (scoring, field, line, says) in [
            (
                "half_life = \"8d\"",
                "scoring.half_life",
                2,
                "from 1s to 7d, found 8d",
            ),
            ("half_life = 0", "scoring.half_life", 2, "found 0s"),
            ("step_up = 0", "scoring.step_up", 2, "above 0"),
            (
                "block = 20000\nmax_score = 40000",
                "scoring.block",
                2,
                "at most 10000, found 20000",
            ),
            ("step_up = 70", "scoring", 1, "step_up <= throttle <= block"),
            (
                "max_score = 99",
                "scoring.max_score",
                2,
                "(100 to 1000), found 99",
            ),
            ("max_score = 1001", "scoring.max_score", 2, "found 1001"),
            (
                "block_for = \"31d\"",
                "scoring.block_for",
                2,
                "from 1s to 30d",
            ),
            (
                "block_for = \"2d\"",
                "scoring.max_block_for",
                1,
                "at least `block_for`",
            ),
            (
                "max_block_for = \"60d\"",
                "scoring.max_block_for",
                2,
                "found 60d",
            ),
            (
                "subnet.count = 1",
                "scoring.subnet.count",
                2,
                "from 2 to 256, found 1",
            ),
            (
                "[scoring.subnet]\ncount = 257",
                "scoring.subnet.count",
                3,
                "found 257",
            ),
            (
                "[scoring.subnet]\nipv4_prefix = 7",
                "scoring.subnet.ipv4_prefix",
                3,
                "from 8 to 32",
            ),
            (
                "[scoring.subnet]\nipv6_prefix = 129",
                "scoring.subnet.ipv6_prefix",
                3,
                "from 16 to 128",
            ),
            (
                "[scoring.subnet]\nwindow = \"45d\"",
                "scoring.subnet.window",
                3,
                "found 45d",
            ),
        ] {
            let text =
                format!("[scoring]\n{scoring}\n\n[[rule]]\nid = \"auth.stuffing\"\ncount = 12\n");
            let e = RuleSet::from_toml(&text).unwrap_err();
            assert_eq!(e.field_name(), Some(field), "{e}\n{text}");
            if line > 1 {
                assert_eq!(e.line(), Some(line), "{e}\n{text}");
            }
            assert!(e.to_string().contains(says), "{e} does not say {says:?}");
        }
        // In code too: `validate` is what `Engine::new` runs.
        let mut set = RuleSet::default();
        set.rule_mut("auth.takeover").unwrap().remember = Some(5000);
        let e = set.validate().unwrap_err();
        assert_eq!(
            (e.rule(), e.field_name()),
            (Some("auth.takeover"), Some("remember"))
        );
        assert!(crate::engine::Engine::new(
            &set,
            std::sync::Arc::new(crate::store::MemoryStore::default()),
            crate::engine::EngineConfig::default()
        )
        .is_err());
    }

    #[test]
    fn built_in_scoring_is_the_default_scoring() {
        // A `[scoring]` table's missing fields take `Scoring::default()`: it must be the pack's.
        assert_eq!(RuleSet::default().scoring, Scoring::default());
    }

    #[test]
    fn a_file_extends_and_overrides_the_built_in_pack() {
        let pack = RuleSet::default();
        let builtin = |id: &str| pack.rules.iter().find(|r| r.id == id).unwrap().clone();
        let text = "[scoring]\nblock = 120\n\n\
                    [[rule]]\nid = \"auth.bruteforce.user\"\ncount = 6\n\n\
                    [[rule]]\nid = \"sig.xss\"\nenabled = false\n\n\
                    [[rule]]\nid = \"http.probe_burst\"\nshadow = true\nstatus = [404]\n\n\
                    [[rule]]\nid = \"mine\"\nkind = \"threshold\"\non = [\"order.failed\"]\nkey = \"user\"\ncount = 3\nwindow = \"1h\"\nscore = 10\n";
        let set = RuleSet::from_toml(text).unwrap();
        assert_eq!(set.rules.len(), pack.rules.len() + 1);
        // Partial override: only `count` changed.
        let user = set
            .rules
            .iter()
            .find(|r| r.id == "auth.bruteforce.user")
            .unwrap();
        assert_eq!(
            user,
            &RuleConfig {
                count: Some(6),
                ..builtin("auth.bruteforce.user")
            }
        );
        let xss = set.rules.iter().find(|r| r.id == "sig.xss").unwrap();
        assert_eq!(
            xss,
            &RuleConfig {
                enabled: false,
                ..builtin("sig.xss")
            }
        );
        let probe = set
            .rules
            .iter()
            .find(|r| r.id == "http.probe_burst")
            .unwrap();
        assert_eq!(
            probe,
            &RuleConfig {
                shadow: true,
                status: vec![404],
                ..builtin("http.probe_burst")
            }
        );
        // Untouched rules stay, in their places; the new one comes last.
        assert_eq!(
            set.rules[..pack.rules.len()]
                .iter()
                .map(|r| &r.id)
                .collect::<Vec<_>>(),
            pack.rules.iter().map(|r| &r.id).collect::<Vec<_>>()
        );
        assert_eq!(set.rules.last().unwrap().id, "mine");
        assert_eq!(
            set.rules.iter().find(|r| r.id == "auth.stuffing"),
            Some(&builtin("auth.stuffing"))
        );
        // `[scoring]`: only `block` changed.
        assert_eq!(
            set.scoring,
            Scoring {
                block: 120.0,
                ..Scoring::default()
            }
        );

        // The built-in pack goes only when the file says so.
        let only = RuleSet::from_toml(&format!(
            "builtin = false\n{}",
            &text[text.find("[[rule]]\nid = \"mine\"").unwrap()..]
        ))
        .unwrap();
        assert_eq!(
            only.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["mine"]
        );
        assert_eq!(RuleSet::from_toml("builtin = true\n").unwrap(), pack);

        // Without the pack, a built-in id is a new rule and needs its kind.
        let e = RuleSet::from_toml(
            "builtin = false\n\n[[rule]]\nid = \"auth.bruteforce.user\"\ncount = 6\n",
        )
        .unwrap_err();
        assert_eq!((e.line(), e.field_name()), (Some(3), Some("kind")), "{e}");
        assert!(e.to_string().contains("not a built-in rule"), "{e}");
        // A typo in an id says so rather than adding a half rule.
        let e =
            RuleSet::from_toml("[[rule]]\nid = \"auth.bruteforce.usr\"\ncount = 6\n").unwrap_err();
        assert_eq!(
            (e.line(), e.rule(), e.field_name()),
            (Some(1), Some("auth.bruteforce.usr"), Some("kind")),
            "{e}"
        );
        // Errors in an override name the user's line and field.
        let e = RuleSet::from_toml(
            "\n[[rule]]\nid = \"auth.stuffing\"\ndescription = \"x\"\nwindow = \"90d\"\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.line(), e.rule(), e.field_name()),
            (Some(5), Some("auth.stuffing"), Some("window")),
            "{e}"
        );
        let e =
            RuleSet::from_toml("[[rule]]\nid = \"auth.stuffing\"\ncount = \"ten\"\n").unwrap_err();
        assert_eq!((e.line(), e.field_name()), (Some(3), Some("count")), "{e}");
        // One id twice in a file.
        let e = RuleSet::from_toml(
            "[[rule]]\nid = \"sig.xss\"\nscore = 1\n\n[[rule]]\nid = \"sig.xss\"\nscore = 2\n",
        )
        .unwrap_err();
        assert_eq!((e.line(), e.field_name()), (Some(5), Some("id")), "{e}");
        assert!(e.to_string().contains("duplicate"), "{e}");

        // Code-built sets are taken as they are, and `to_toml` reads back as the same set.
        let code = RuleSet::default()
            .without_rule("sig.xss")
            .with_rule(builtin("sig.xss").clone_with_id("sig.xss2"));
        assert_eq!(RuleSet::from_toml(&code.to_toml()).unwrap(), code);
    }

    impl RuleConfig {
        fn clone_with_id(mut self, id: &str) -> Self {
            self.id = id.into();
            self
        }
    }

    #[test]
    fn no_active_rule_is_refused() {
        // An empty file is the built-in pack, not "ok, 0 rules".
        assert_eq!(RuleSet::from_toml("").unwrap(), RuleSet::default());
        assert_eq!(
            RuleSet::from_toml("# nothing yet\n").unwrap().rules.len(),
            RuleSet::default().rules.len()
        );
        let says = |e: ConfigError| {
            assert!(
                e.to_string()
                    .contains("no active rule: every detection would be off"),
                "{e}"
            );
        };
        says(RuleSet::from_toml("builtin = false\n").unwrap_err());
        let every = |field: &str| {
            RuleSet::default()
                .rules
                .iter()
                .map(|r| format!("[[rule]]\nid = \"{}\"\n{field} \n\n", r.id))
                .collect::<String>()
        };
        says(RuleSet::from_toml(&every("enabled = false")).unwrap_err());
        says(RuleSet::from_toml(&every("shadow = true")).unwrap_err());
        // Only relief left: nothing detects.
        let relief = "builtin = false\n[[rule]]\nid = \"mfa.relief\"\nkind = \"relief\"\non = [\"mfa.success\"]\ntarget = \"user\"\nkeep = 0.0\n";
        says(RuleSet::from_toml(relief).unwrap_err());
        // One active rule is enough.
        let mut one = every("enabled = false");
        one.push_str(
            "[[rule]]\nid = \"mine\"\nkind = \"signature\"\npack = \"sqli\"\nscore = 40\n",
        );
        RuleSet::from_toml(&one).unwrap();
        // In code.
        let mut set = RuleSet::default();
        for r in &mut set.rules {
            r.shadow = true;
        }
        says(set.validate().unwrap_err());
        let empty = RuleSet {
            rules: Vec::new(),
            ..RuleSet::default()
        };
        says(empty.validate().unwrap_err());
        // `check_toml` reports it once, and not for each part of a file with other errors.
        let errors = RuleSet::check_toml("builtin = false\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        let errors = RuleSet::check_toml(&rule("count = 0\nwindow = \"1m\"\nscore = 1\n"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field_name(), Some("count"));
    }

    #[test]
    fn memory_estimate_follows_counts_and_capacity() {
        let t = |count: u32| RuleConfig {
            key: Some(EntityKind::Ip),
            on: vec!["x".into()],
            count: Some(count),
            window: Some(Dur(Duration::from_secs(60))),
            score: Some(1.0),
            ..RuleConfig::new("t", RuleKind::Threshold)
        };
        assert_eq!(t(10).state_bytes_per_key(), 80);
        let (small, big) = (
            t(10).memory_estimate(65_536),
            t(10_000).memory_estimate(65_536),
        );
        assert_eq!(big - small, 65_536 * 9_990 * 8);
        assert!(t(10).memory_estimate(1024) < small);
        assert_eq!(
            RuleConfig {
                enabled: false,
                ..t(10)
            }
            .memory_estimate(65_536),
            0
        );
        let takeover = RuleSet::default()
            .rules
            .into_iter()
            .find(|r| r.id == "auth.takeover")
            .unwrap();
        assert_eq!(takeover.state_bytes_per_key(), 16 * 16 + 4 * 8);
        let sig = RuleConfig::new("s", RuleKind::Signature);
        assert_eq!(sig.memory_estimate(65_536), 0);
        let set = RuleSet::default();
        assert_eq!(
            set.memory_estimate(65_536),
            set.rules
                .iter()
                .map(|r| r.memory_estimate(65_536))
                .sum::<u64>()
        );
        // The table itself is counted: at least a key, a state and a time per key.
        assert!(small >= 65_536 * (80 + 8 + 8));
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
