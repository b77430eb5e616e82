//! Turning parsed lines into the events the live layer would have produced, through the engine.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::engine::{Action, EntityKey, RuleKind, RuleSet, Verdict};
use crate::event::{Event, EventName, HttpInfo, Redactor, Subject};
use crate::Siem;

use super::read::{excerpt, Batch, Rec};

/// How login requests are recognised in an access log.
#[derive(Clone, Debug)]
pub(crate) struct LoginRule {
    /// Lower-case substrings of the path of a `POST` that is a login.
    pub(crate) paths: Vec<Vec<u8>>,
    /// Statuses that mean the login failed; other 2xx/3xx answers mean it succeeded.
    pub(crate) failure: Vec<u16>,
}

impl LoginRule {
    /// The auth event a request stands for, if it is a login.
    fn event(&self, method: &[u8], path: &[u8], status: u16) -> Option<EventName> {
        if !method.eq_ignore_ascii_case(b"POST") || self.paths.is_empty() {
            return None;
        }
        let lower = path.to_ascii_lowercase();
        if !self
            .paths
            .iter()
            .any(|p| memchr::memmem::find(&lower, p).is_some())
        {
            return None;
        }
        if self.failure.contains(&status) {
            Some(EventName::AUTH_FAILURE)
        } else if (200..400).contains(&status) {
            Some(EventName::AUTH_SUCCESS)
        } else {
            None
        }
    }
}

/// The user a login line names: the logged user (`%u`, HTTP basic auth), else a `user`,
/// `username`, `login` or `email` query parameter.
fn login_user(batch: &Batch, r: &Rec) -> Option<String> {
    if let Some(u) = batch.text(r.user) {
        return Some(String::from_utf8_lossy(u).into_owned());
    }
    let q = batch.text(r.query)?;
    for pair in q.split(|&b| b == b'&') {
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => continue,
        };
        if ["user", "username", "login", "email"]
            .iter()
            .any(|n| k.eq_ignore_ascii_case(n.as_bytes()))
            && !v.is_empty()
        {
            let v: Vec<u8> = v
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            let d = percent_encoding::percent_decode(&v).decode_utf8_lossy();
            return Some(d.into_owned());
        }
    }
    None
}

/// One rule behind a client's verdict.
#[derive(Clone, Debug)]
pub(crate) struct Reason {
    pub(crate) rule: Arc<str>,
    pub(crate) hits: u64,
    /// The first log line that made the rule fire for this client (with its place).
    pub(crate) sample: String,
}

/// What the replay learned about one client (IPv4 address, or IPv6 /64).
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub(crate) requests: u64,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
    /// The most severe action the layer would have taken against the client.
    pub(crate) action: Action,
    /// The highest risk score the client reached.
    pub(crate) score: f64,
    pub(crate) reasons: Vec<Reason>,
}

/// What every line updates, kept in the index itself so that a line costs one lookup.
#[derive(Clone, Copy, Debug)]
struct Hot {
    /// Where the client's [`Cold`] part is.
    slot: u32,
    requests: u64,
    first_seen: i64,
    last_seen: i64,
}

/// What only suspicious lines touch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cold {
    action: Action,
    score: f64,
    reasons: Vec<Reason>,
}

impl Cold {
    fn note(&mut self, v: &Verdict) {
        // Most requests come with nothing against them: leave the entry untouched (and
        // uncached).
        if v.action == Action::Allow && v.score <= 0.0 {
            return;
        }
        self.action = self.action.max(v.action);
        if v.score > self.score {
            self.score = v.score;
        }
    }

    fn hit(&mut self, rule: &Arc<str>, n: u64, sample: impl FnOnce() -> String) {
        match self.reasons.iter_mut().find(|r| r.rule == *rule) {
            Some(r) => r.hits += n,
            None => self.reasons.push(Reason {
                rule: rule.clone(),
                hits: n,
                sample: sample(),
            }),
        }
    }
}

/// The per-client report table of one worker, bounded: past `cap` clients the quarter with
/// the least against them (action, then score, then requests) is dropped. What every line
/// updates lives in the index; the rest, which only suspicious lines touch, apart.
pub(crate) struct Clients {
    index: HashMap<IpAddr, Hot, ahash::RandomState>,
    cold: Vec<Cold>,
    cap: usize,
    /// Clients dropped to stay within `cap`.
    pub(crate) evicted: u64,
}

impl Clients {
    pub(crate) fn new(cap: usize) -> Self {
        Clients {
            index: HashMap::default(),
            cold: Vec::new(),
            cap: cap.clamp(4, u32::MAX as usize),
            evicted: 0,
        }
    }

    /// Every client kept, with its key.
    pub(crate) fn into_vec(mut self) -> Vec<(IpAddr, Client)> {
        self.index
            .into_iter()
            .map(|(k, h)| {
                let c = std::mem::take(&mut self.cold[h.slot as usize]);
                (
                    k,
                    Client {
                        requests: h.requests,
                        first_seen: h.first_seen,
                        last_seen: h.last_seen,
                        action: c.action,
                        score: c.score,
                        reasons: c.reasons,
                    },
                )
            })
            .collect()
    }

    /// Counts a request of `key` at `t`; the client's suspicious part.
    fn request(&mut self, key: IpAddr, t: i64) -> &mut Cold {
        let slot = match self.index.get_mut(&key) {
            Some(h) => {
                h.requests += 1;
                h.first_seen = h.first_seen.min(t);
                h.last_seen = h.last_seen.max(t);
                h.slot
            }
            None => {
                if self.cold.len() >= self.cap {
                    self.prune();
                }
                let slot = self.cold.len() as u32;
                self.cold.push(Cold::default());
                self.index.insert(
                    key,
                    Hot {
                        slot,
                        requests: 1,
                        first_seen: t,
                        last_seen: t,
                    },
                );
                slot
            }
        };
        &mut self.cold[slot as usize]
    }

    fn prune(&mut self) {
        let mut order: Vec<(IpAddr, Action, f64, u64)> = self
            .index
            .iter()
            .map(|(k, h)| {
                let c = &self.cold[h.slot as usize];
                (*k, c.action, c.score, h.requests)
            })
            .collect();
        let drop = (order.len() / 4).max(1);
        order.select_nth_unstable_by(drop - 1, |a, b| {
            a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)).then(a.3.cmp(&b.3))
        });
        for (k, ..) in &order[..drop] {
            self.index.remove(k);
        }
        let mut cold = Vec::with_capacity(self.cold.len());
        for h in self.index.values_mut() {
            cold.push(std::mem::take(&mut self.cold[h.slot as usize]));
            h.slot = (cold.len() - 1) as u32;
        }
        self.cold = cold;
        self.evicted += drop as u64;
    }
}

/// Replays records through the engine the way `SiemLayer` handles requests.
pub(crate) struct Replayer {
    pub(crate) siem: Siem,
    /// Signature pack id → the (acting) rule that fires on it.
    pack_rules: HashMap<Box<str>, Arc<str>, ahash::RandomState>,
    pub(crate) login: LoginRule,
    redactor: Redactor,
    /// Input names, for the `source` of streamed events and of samples.
    pub(crate) names: Vec<String>,
}

impl Replayer {
    pub(crate) fn new(siem: Siem, rules: &RuleSet, login: LoginRule, names: Vec<String>) -> Self {
        let pack_rules = rules
            .rules
            .iter()
            .filter(|r| r.enabled && !r.shadow && r.kind == RuleKind::Signature)
            .filter_map(|r| Some((r.pack.clone()?.into_boxed_str(), r.id.as_str().into())))
            .collect();
        Replayer {
            siem,
            pack_rules,
            login,
            redactor: Redactor::default(),
            names,
        }
    }

    fn source(&self, b: &Batch, r: &Rec) -> String {
        let name = self.names.get(b.input as usize).map_or("-", |s| s.as_str());
        format!("{name}:{}", b.line_base + u64::from(r.line))
    }

    /// The line behind a finding, for the report: secrets masked (query values, path tokens,
    /// `Referer`, token shapes) before it is cut to length.
    fn sample(&self, b: &Batch, r: &Rec) -> String {
        let raw = String::from_utf8_lossy(b.text(r.raw).unwrap_or_default());
        format!(
            "{}: {}",
            self.source(b, r),
            excerpt(self.redactor.text(&raw).as_bytes(), 240)
        )
    }

    /// Hit counts of the rules behind an entity's score (to attribute firings to a client).
    fn rule_hits(&self, key: &EntityKey) -> Vec<(Arc<str>, u32)> {
        self.siem
            .engine()
            .store()
            .get(key)
            .map(|s| {
                s.contributions
                    .iter()
                    .map(|c| (c.rule.clone(), c.hits))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ingests an event and credits the client with the rules it made fire on the client's
    /// address and, for auth events, on the named user.
    fn ingest(&self, e: &Event, client: &mut Cold, sample: &dyn Fn() -> String) -> Verdict {
        let engine = self.siem.engine();
        let mut keys = Vec::with_capacity(2);
        if let Some(ip) = e.subject.ip {
            keys.push(EntityKey::Ip(engine.ip_key(ip)));
        }
        if let Some(u) = &e.subject.user {
            keys.push(EntityKey::User(u.as_str().into()));
        }
        let before: Vec<_> = keys.iter().map(|k| self.rule_hits(k)).collect();
        let v = engine.ingest(e);
        for (k, before) in keys.iter().zip(before) {
            for (rule, hits) in self.rule_hits(k) {
                let was = before
                    .iter()
                    .find(|(r, _)| *r == rule)
                    .map_or(0, |(_, h)| *h);
                if hits > was {
                    client.hit(&rule, u64::from(hits - was), sample);
                }
            }
        }
        client.note(&v);
        v
    }

    /// Replays one request; streamed events (with `ndjson`) are appended to `out`.
    pub(crate) fn replay(
        &self,
        b: &Batch,
        r: &Rec,
        clients: &mut Clients,
        out: Option<&mut Vec<u8>>,
    ) {
        let engine = self.siem.engine();
        let t = r.time_ms;
        let key = engine.ip_key(r.ip);
        let client = clients.request(key, t);

        let subject = Subject::ip(r.ip);
        let path_b = b.text(r.path).unwrap_or_default();
        let path = text(path_b);
        let query = b.text(r.query).map(text);
        let ua = b.text(r.user_agent).map(text);

        // Before the handler: signatures, then the gate (as `SiemService::call`).
        let hits = engine.inspect(&subject, &path, query.as_deref(), ua.as_deref(), t);
        for h in &hits {
            if let Some(rule) = self.pack_rules.get(&*h.pack) {
                client.hit(rule, 1, || self.sample(b, r));
            }
        }
        let gate = engine.verdict_at(&subject, t);
        client.note(&gate);

        let method = b.text(r.method).unwrap_or_default();
        let mut out = out;
        let status = match gate.action {
            Action::Block => 403,
            Action::Throttle => 429,
            _ => {
                // The handler runs: a login answers with the logged status.
                if let Some(name) = self.login.event(method, path_b, r.status) {
                    let mut e = Event::new_at(name, ts(t)).subject(subject.clone());
                    e.subject.user = login_user(b, r);
                    e.user_agent = ua.as_deref().map(str::to_owned);
                    e.http = Some(self.http_info(method, &path, query.as_deref(), r, None));
                    let mut v = self.ingest(&e, client, &|| self.sample(b, r));
                    if let Some(out) = out.as_deref_mut() {
                        e.verdict = Some(std::mem::take(&mut v));
                        self.write(out, &mut e, b, r);
                    }
                }
                r.status
            }
        };

        // After the response: the `http.request` event (as `future::record`).
        let apply = gate.action != Action::Block && engine.wants_request(Some(status), gate.action);
        if !apply && out.is_none() {
            engine.count_event();
            return;
        }
        let mut e = Event::new_at(EventName::HTTP_REQUEST, ts(t)).subject(subject);
        e.user_agent = ua.as_deref().map(str::to_owned);
        e.http = Some(self.http_info(method, &path, query.as_deref(), r, Some(status)));
        e.verdict = Some(gate);
        if apply {
            self.ingest(&e, client, &|| self.sample(b, r));
        } else {
            engine.count_event();
        }
        if let Some(out) = out {
            if status != r.status {
                e.attrs.push(("logged_status".into(), r.status.to_string()));
            }
            self.write(out, &mut e, b, r);
        }
    }

    fn http_info(
        &self,
        method: &[u8],
        path: &str,
        query: Option<&str>,
        r: &Rec,
        status: Option<u16>,
    ) -> HttpInfo {
        HttpInfo {
            method: String::from_utf8_lossy(method).into_owned(),
            path: self.redactor.path(path).into_owned(),
            // Secret query values never leave the process.
            query: query.and_then(|q| self.redactor.query(q)),
            status: status.or(Some(r.status)),
            bytes: r.bytes,
            ..HttpInfo::default()
        }
    }

    fn write(&self, out: &mut Vec<u8>, e: &mut Event, b: &Batch, r: &Rec) {
        e.attrs.push(("source".into(), self.source(b, r)));
        if serde_json::to_writer(&mut *out, e).is_ok() {
            out.push(b'\n');
        }
    }
}

/// UTF-8 text, borrowed when valid (the common case, checked at full speed).
fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

fn ts(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_posts_to_login_paths() {
        let l = LoginRule {
            paths: vec![b"login".to_vec(), b"signin".to_vec()],
            failure: vec![401, 403],
        };
        assert_eq!(
            l.event(b"POST", b"/api/Login", 401),
            Some(EventName::AUTH_FAILURE)
        );
        assert_eq!(
            l.event(b"post", b"/signin", 302),
            Some(EventName::AUTH_SUCCESS)
        );
        assert_eq!(l.event(b"GET", b"/login", 401), None);
        assert_eq!(l.event(b"POST", b"/login", 500), None);
        assert_eq!(l.event(b"POST", b"/cart", 401), None);
    }
}
