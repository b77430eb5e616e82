//! Access to the real PostgreSQL and NATS servers the service-backed tests run against.
//!
//! A test that needs one is `#[ignore]`d with the variable to set; run with
//! `--include-ignored`, it fails (never passes silently) when the variable is unset or the
//! server does not answer.

/// The URL in `var`; panics with what to set when it is missing.
pub fn url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: this test needs the real server (.ci/run starts it and sets the variable)")
    })
}

/// A name no other test run uses, for tables and streams.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(feature = "postgres")]
pub mod pg {
    /// `TOWER_SIEM_TEST_POSTGRES`.
    pub fn url() -> String {
        super::url("TOWER_SIEM_TEST_POSTGRES")
    }

    /// The server's `host:port`, for a proxy in front of it.
    pub fn addr() -> std::net::SocketAddr {
        let config: tokio_postgres::Config = url().parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[allow(unreachable_patterns)]
            _ => panic!("the test server must be reached over TCP"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let host = if host == "localhost" {
            "127.0.0.1".to_owned()
        } else {
            host
        };
        std::net::SocketAddr::new(host.parse().unwrap(), port)
    }

    /// The same database reached through `addr` (a proxy).
    pub fn url_via(addr: std::net::SocketAddr) -> String {
        let config: tokio_postgres::Config = url().parse().unwrap();
        let user = config.get_user().unwrap_or("postgres");
        let db = config.get_dbname().unwrap_or("postgres");
        format!("postgres://{user}@{addr}/{db}")
    }

    /// A direct client for checking what the sink stored.
    pub async fn client() -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL answers at TOWER_SIEM_TEST_POSTGRES");
        tokio::spawn(connection);
        client
    }

    /// A fresh table name.
    pub fn table() -> String {
        super::unique("t")
    }

    /// Rows in `table`.
    pub async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
        client
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Drops a test table and its schema record.
    pub async fn drop_table(client: &tokio_postgres::Client, table: &str) {
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
            .await
            .unwrap();
        client
            .execute(
                "DELETE FROM tower_siem_schema WHERE table_name = $1",
                &[&table],
            )
            .await
            .unwrap();
    }
}

#[cfg(feature = "nats")]
pub mod nats {
    use async_nats::jetstream;

    /// `TOWER_SIEM_TEST_NATS`.
    pub fn url() -> String {
        super::url("TOWER_SIEM_TEST_NATS")
    }

    /// The server's `host:port`, for a proxy in front of it.
    pub fn addr() -> std::net::SocketAddr {
        let url = url();
        let rest = url.split("://").last().unwrap();
        let rest = rest.replace("localhost", "127.0.0.1");
        rest.trim_end_matches('/').parse().unwrap()
    }

    /// A direct JetStream context for checking what the sink stored.
    pub async fn context() -> jetstream::Context {
        let client = async_nats::connect(url())
            .await
            .expect("NATS answers at TOWER_SIEM_TEST_NATS");
        jetstream::new(client)
    }

    /// A fresh stream name and subject prefix.
    pub fn names() -> (String, String) {
        let id = uuid::Uuid::now_v7().simple().to_string();
        (format!("T_{id}"), format!("t{id}.ev"))
    }

    /// Every message in `stream`, in order.
    pub async fn messages(
        js: &jetstream::Context,
        stream: &str,
    ) -> Vec<jetstream::message::StreamMessage> {
        let mut s = js.get_stream(stream).await.unwrap();
        let info = s.info().await.unwrap().clone();
        let mut out = Vec::new();
        for seq in info.state.first_sequence..=info.state.last_sequence {
            if info.state.messages == 0 {
                break;
            }
            if let Ok(m) = s.get_raw_message(seq).await {
                out.push(m);
            }
        }
        out
    }

    /// Messages in `stream`.
    pub async fn count(js: &jetstream::Context, stream: &str) -> u64 {
        let mut s = js.get_stream(stream).await.unwrap();
        s.info().await.unwrap().state.messages
    }

    /// Deletes a test stream.
    pub async fn delete(js: &jetstream::Context, stream: &str) {
        let _ = js.delete_stream(stream).await;
    }
}

/// Pipeline settings for riding out an outage: small batches, quick wake-ups, and retries
/// patient enough (1,000, backing off to 200 ms) that nothing is dropped while a proxy refuses.
pub fn patient() -> tower_siem::pipeline::PipelineConfig {
    use std::time::Duration;
    use tower_siem::pipeline::{PipelineConfig, RetryPolicy};
    PipelineConfig {
        batch_max: 100,
        flush_interval: Duration::from_millis(20),
        retry: RetryPolicy {
            max_retries: 1_000,
            base: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        ..PipelineConfig::default()
    }
}
