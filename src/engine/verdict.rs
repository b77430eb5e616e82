//! What the SIEM decided about a subject, and why.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The response to a subject, from least to most severe.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let the request through untouched.
    #[default]
    Allow,
    /// Let it through, tagged with `X-Step-Up-Required`: the application should ask for a
    /// second factor, a CAPTCHA or a re-login.
    StepUp,
    /// Answer `429 Too Many Requests` with `Retry-After`.
    Throttle,
    /// Answer `403 Forbidden`; the handler does not run.
    Block,
}

impl Action {
    /// The action's name as used in configs, events and the CLI (`step_up`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::StepUp => "step_up",
            Action::Throttle => "throttle",
            Action::Block => "block",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verdict: the action, the risk score behind it, and the rules that put the score there.
///
/// ```
/// use tower_siem::{Action, Verdict};
/// let v = Verdict::allow();
/// assert_eq!(v.action, Action::Allow);
/// assert!(!v.is_suspicious());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// What to do.
    pub action: Action,
    /// The highest current risk score among the subject's entities (decayed to now).
    pub score: f64,
    /// Ids of the rules behind the score, strongest first, without duplicates.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub reasons: Vec<String>,
    /// For `Throttle` and `Block`: seconds until the action lapses on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl Verdict {
    /// Nothing against the subject.
    pub fn allow() -> Self {
        Verdict::default()
    }

    /// Whether the application should be wary: anything above `Allow`.
    pub fn is_suspicious(&self) -> bool {
        self.action > Action::Allow
    }

    /// Whether the request must not reach the handler.
    pub fn is_denied(&self) -> bool {
        self.action >= Action::Throttle
    }

    /// Combines two verdicts: the stronger action wins; reasons are merged.
    pub fn merge(mut self, other: Verdict) -> Verdict {
        if other.action > self.action || (other.action == self.action && other.score > self.score) {
            let mut reasons = other.reasons;
            for r in self.reasons {
                if !reasons.contains(&r) {
                    reasons.push(r);
                }
            }
            Verdict {
                action: other.action,
                score: other.score.max(self.score),
                reasons,
                retry_after_secs: match (other.retry_after_secs, self.retry_after_secs) {
                    (Some(a), Some(b)) if other.action == self.action => Some(a.max(b)),
                    (a, _) => a,
                },
            }
        } else {
            for r in other.reasons {
                if !self.reasons.contains(&r) {
                    self.reasons.push(r);
                }
            }
            self.score = self.score.max(other.score);
            if other.action == self.action {
                self.retry_after_secs = match (self.retry_after_secs, other.retry_after_secs) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            self
        }
    }

    /// The reasons joined with commas, as sent in `X-Step-Up-Required`.
    pub fn reasons_header(&self) -> String {
        if self.reasons.is_empty() {
            "risk".to_owned()
        } else {
            self.reasons.join(",")
        }
    }
}
