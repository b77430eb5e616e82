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
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
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

impl Clone for Verdict {
    fn clone(&self) -> Self {
        Verdict {
            action: self.action,
            score: self.score,
            reasons: self.reasons.clone(),
            retry_after_secs: self.retry_after_secs,
        }
    }

    /// Keeps the buffers of `self`'s reasons (the layer refills pooled events this way).
    fn clone_from(&mut self, source: &Self) {
        let Verdict {
            action,
            score,
            reasons,
            retry_after_secs,
        } = self;
        *action = source.action;
        *score = source.score;
        reasons.clone_from(&source.reasons);
        *retry_after_secs = source.retry_after_secs;
    }
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

    /// Combines two verdicts: the stronger action wins (then the higher score); reasons are
    /// merged, the winner's first.
    pub fn merge(self, other: Verdict) -> Verdict {
        // The common case on the request path: nothing against one side.
        if other.is_nothing() {
            return self;
        }
        if self.is_nothing() {
            return other;
        }
        let other_wins =
            other.action > self.action || (other.action == self.action && other.score > self.score);
        let (mut hi, lo) = if other_wins {
            (other, self)
        } else {
            (self, other)
        };
        for r in lo.reasons {
            if !hi.reasons.contains(&r) {
                hi.reasons.push(r);
            }
        }
        hi.score = hi.score.max(lo.score);
        if lo.action == hi.action {
            hi.retry_after_secs = hi.retry_after_secs.max(lo.retry_after_secs);
        }
        hi
    }

    /// `Allow` with no score, no reasons and no retry: what [`allow`](Verdict::allow) gives.
    fn is_nothing(&self) -> bool {
        self.action == Action::Allow
            && self.score == 0.0
            && self.reasons.is_empty()
            && self.retry_after_secs.is_none()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_from_gives_an_equal_verdict_and_keeps_the_reasons_buffer() {
        let source = Verdict {
            action: Action::StepUp,
            score: 41.5,
            reasons: vec!["login.bruteforce_ip".into()],
            retry_after_secs: Some(30),
        };
        let mut to = Verdict {
            action: Action::Block,
            score: 99.0,
            reasons: vec!["a".into(), "b".into(), "c".into()],
            retry_after_secs: None,
        };
        let buffer = to.reasons.as_ptr();
        to.clone_from(&source);
        assert_eq!(to, source);
        assert_eq!(to.reasons.as_ptr(), buffer);
        to.clone_from(&Verdict::allow());
        assert_eq!(to, Verdict::allow());
    }

    fn v(action: Action, score: f64, reasons: &[&str], retry: Option<u64>) -> Verdict {
        Verdict {
            action,
            score,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            retry_after_secs: retry,
        }
    }

    #[test]
    fn merge_keeps_the_strongest_and_all_reasons() {
        let a = v(Action::StepUp, 40.0, &["a"], None);
        let b = v(Action::Block, 100.0, &["b", "a"], Some(600));
        assert_eq!(
            a.clone().merge(b.clone()),
            v(Action::Block, 100.0, &["b", "a"], Some(600))
        );
        assert_eq!(b.merge(a), v(Action::Block, 100.0, &["b", "a"], Some(600)));
        let t1 = v(Action::Throttle, 61.0, &["x"], Some(10));
        let t2 = v(Action::Throttle, 70.0, &["y"], Some(5));
        assert_eq!(
            t1.merge(t2),
            v(Action::Throttle, 70.0, &["y", "x"], Some(10))
        );
        assert_eq!(Verdict::allow().merge(Verdict::allow()), Verdict::allow());
    }
}
