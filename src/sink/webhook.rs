//! A webhook sink: posts alerts (or every event) to an HTTP(S) endpoint.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::{BoxFuture, Interest, Sink, SinkError};
use crate::event::{EventName, SharedEvent};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Most alert lines in one Slack message; the rest are summarised in one line.
const SLACK_LINES: usize = 40;

/// Why a [`WebhookSink`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebhookError {
    /// The URL does not parse, or is not `http`/`https`.
    Url(String),
    /// A header name or value is not valid HTTP.
    Header(String),
    /// The HTTP client could not be set up (its TLS configuration).
    Client(reqwest::Error),
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookError::Url(m) => write!(f, "webhook URL: {m}"),
            WebhookError::Header(m) => write!(f, "webhook header: {m}"),
            WebhookError::Client(e) => write!(f, "webhook HTTP client: {e}"),
        }
    }
}

impl std::error::Error for WebhookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebhookError::Client(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Native,
    Slack,
}

#[derive(Clone)]
struct Config {
    url: reqwest::Url,
    all_events: bool,
    body: Body,
    timeout: Duration,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Posts the SIEM's alerts to a webhook: an entity newly stepped up, throttled or blocked.
///
/// - **Alerts, not every event.** The sink takes only `siem.alert` events
///   ([`EventName::SIEM_ALERT`]), which the engine emits when a rule raises an entity's action;
///   [`all_events`](Self::all_events) posts every event instead (for a collector that wants
///   them all). One batch is one `POST`.
/// - **Bodies.** By default a JSON array of events, as the other sinks store them
///   (`Content-Type: application/json`). With [`slack`](Self::slack), a Slack-compatible
///   `{"text": "…"}` message with one line per alert (also understood by Mattermost, Rocket.Chat
///   and others), its text escaped so an attacker-chosen user name cannot inject links.
/// - **Failures.** A `2xx` answer acknowledges the batch. Connection errors, timeouts, `5xx`,
///   `408` and `429` are *unavailable*: the pipeline retries them with its
///   [`RetryPolicy`](crate::pipeline::RetryPolicy) (and, with a spool, until the receiver is
///   back). Any other answer means the receiver refuses this payload: reported as an encoding
///   error, so even a spooled pipeline gives the batch up after its retries instead of blocking
///   behind it. Redirects are not followed.
/// - **Secrets.** Events are redacted before any sink sees them. Headers set with
///   [`header`](Self::header) (an `Authorization` token for the receiver, say) are marked
///   sensitive, and `Debug` shows neither them nor the URL's path and query, where services
///   such as Slack put their secret.
///
/// A retried batch may reach the receiver twice (when an answer is lost, not the request): each
/// event carries a unique `id` to de-duplicate on.
///
/// TLS is rustls with the webpki root certificates; no OpenSSL.
///
/// ```
/// use std::time::Duration;
/// use tower_siem::sink::WebhookSink;
/// use tower_siem::Siem;
///
/// let hook = WebhookSink::new("https://hooks.example.com/services/T000/B000/XXXX")?
///     .slack()
///     .timeout(Duration::from_secs(3));
/// assert!(!format!("{hook:?}").contains("XXXX"));
/// let siem = Siem::builder().sink(hook).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct WebhookSink {
    client: reqwest::Client,
    config: Arc<Config>,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let names: Vec<&str> = c.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("WebhookSink")
            .field("origin", &c.url.origin().ascii_serialization())
            .field("all_events", &c.all_events)
            .field("body", &c.body)
            .field("timeout", &c.timeout)
            .field("headers", &names)
            .finish()
    }
}

impl WebhookSink {
    /// A sink posting alerts to `url` (`http` or `https`), with a 5 s timeout per request.
    ///
    /// # Errors
    ///
    /// The URL is invalid or not HTTP(S), or the TLS client cannot be set up.
    pub fn new(url: &str) -> Result<Self, WebhookError> {
        let url = reqwest::Url::parse(url).map_err(|e| WebhookError::Url(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(WebhookError::Url(format!(
                "expected an http or https URL with a host, got scheme {:?}",
                url.scheme()
            )));
        }
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(WebhookError::Client)?;
        Ok(WebhookSink {
            client,
            config: Arc::new(Config {
                url,
                all_events: false,
                body: Body::Native,
                timeout: DEFAULT_TIMEOUT,
                headers: Vec::new(),
            }),
        })
    }

    /// Posts every event, not only alerts.
    pub fn all_events(mut self) -> Self {
        Arc::make_mut(&mut self.config).all_events = true;
        self
    }

    /// Posts a Slack-compatible `{"text": …}` message instead of a JSON array.
    pub fn slack(mut self) -> Self {
        Arc::make_mut(&mut self.config).body = Body::Slack;
        self
    }

    /// Gives up on a request after this long (default 5 s; connecting alone, 2 s at most).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).timeout = timeout;
        self
    }

    /// Sends this header with every request (marked sensitive: never logged or printed).
    ///
    /// # Errors
    ///
    /// The name or value is not valid in an HTTP header.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, WebhookError> {
        let name = HeaderName::try_from(name).map_err(|e| WebhookError::Header(e.to_string()))?;
        let mut value = HeaderValue::try_from(value)
            .map_err(|_| WebhookError::Header(format!("invalid value for {name}")))?;
        value.set_sensitive(true);
        Arc::make_mut(&mut self.config).headers.push((name, value));
        Ok(self)
    }

    fn wants(&self, event: &SharedEvent) -> bool {
        self.config.all_events || event.name == EventName::SIEM_ALERT
    }

    fn body(&self, events: &[&SharedEvent]) -> Result<Vec<u8>, SinkError> {
        match self.config.body {
            Body::Native => serde_json::to_vec(events).map_err(SinkError::encode),
            Body::Slack => {
                let text = slack_text(events);
                serde_json::to_vec(&serde_json::json!({ "text": text })).map_err(SinkError::encode)
            }
        }
    }
}

/// Escapes the three characters Slack's markup gives meaning to.
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

fn slack_text(events: &[&SharedEvent]) -> String {
    let mut text = String::new();
    for e in events.iter().take(SLACK_LINES) {
        if !text.is_empty() {
            text.push('\n');
        }
        if e.name == EventName::SIEM_ALERT {
            let attr = |k| e.get_attr(k).unwrap_or("?");
            text.push_str("tower-siem: ");
            escape(attr("entity"), &mut text);
            text.push(' ');
            escape(attr("previous_action"), &mut text);
            text.push_str(" → *");
            escape(attr("action"), &mut text);
            text.push_str("* (score ");
            escape(attr("score"), &mut text);
            text.push_str("; rules: ");
            escape(attr("rules"), &mut text);
            text.push(')');
        } else {
            text.push_str("tower-siem: ");
            escape(e.name.as_str(), &mut text);
            if let Some(ip) = e.subject.ip {
                let _ = write!(text, " ip:{ip}");
            }
            if let Some(user) = &e.subject.user {
                text.push_str(" user:");
                escape(user, &mut text);
            }
            if let Some(v) = &e.verdict {
                let _ = write!(text, " → {}", v.action);
            }
        }
    }
    if events.len() > SLACK_LINES {
        let _ = write!(text, "\n… and {} more", events.len() - SLACK_LINES);
    }
    text
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        "webhook"
    }

    fn interest(&self) -> Interest {
        if self.config.all_events {
            Interest::All
        } else {
            Interest::Names(vec![EventName::SIEM_ALERT])
        }
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let events: Vec<&SharedEvent> = batch.iter().filter(|e| self.wants(e)).collect();
            if events.is_empty() {
                return Ok(());
            }
            let body = self.body(&events)?;
            let mut request = self
                .client
                .post(self.config.url.clone())
                .timeout(self.config.timeout)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body);
            for (name, value) in &self.config.headers {
                request = request.header(name.clone(), value.clone());
            }
            // The error's text is the URL without its path (see `without_url`), nothing else.
            let response = request
                .send()
                .await
                .map_err(|e| SinkError::unavailable(e.without_url()))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let message = format!("webhook answered {status}");
            if status.is_server_error()
                || status == reqwest::StatusCode::REQUEST_TIMEOUT
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            {
                Err(SinkError::unavailable(message))
            } else {
                Err(SinkError::encode(format!(
                    "{message}: the receiver refuses this payload"
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    #[test]
    fn bad_urls_are_refused() {
        assert!(matches!(
            WebhookSink::new("not a url"),
            Err(WebhookError::Url(_))
        ));
        assert!(matches!(
            WebhookSink::new("ftp://example.com/x"),
            Err(WebhookError::Url(_))
        ));
        assert!(matches!(
            WebhookSink::new("http://example.com")
                .unwrap()
                .header("bad name", "x"),
            Err(WebhookError::Header(_))
        ));
    }

    #[test]
    fn debug_hides_path_query_and_header_values() {
        let s = WebhookSink::new("https://hooks.example.com/T0/B0/secretpath?token=abc")
            .unwrap()
            .header("authorization", "Bearer hunter2")
            .unwrap();
        let d = format!("{s:?}");
        assert!(d.contains("https://hooks.example.com"), "{d}");
        for secret in ["secretpath", "abc", "hunter2"] {
            assert!(!d.contains(secret), "{d}");
        }
        assert!(d.contains("authorization"), "{d}");
    }

    #[test]
    fn slack_text_escapes_markup_and_summarises() {
        let alert: SharedEvent = Arc::new(
            Event::new(EventName::SIEM_ALERT)
                .attr("entity", "user:<http://evil|click>&")
                .attr("previous_action", "allow")
                .attr("action", "step_up")
                .attr("score", "30.0")
                .attr("rules", "auth.bruteforce.user"),
        );
        let text = slack_text(&[&alert]);
        assert_eq!(
            text,
            "tower-siem: user:&lt;http://evil|click&gt;&amp; allow → *step_up* (score 30.0; rules: auth.bruteforce.user)"
        );
        let many: Vec<&SharedEvent> = std::iter::repeat_n(&alert, SLACK_LINES + 3).collect();
        let text = slack_text(&many);
        assert_eq!(text.lines().count(), SLACK_LINES + 1);
        assert!(text.ends_with("… and 3 more"));
    }
}
