//! `PostgresSink` over TLS (feature `postgres-tls`) against a throw-away PostgreSQL server that
//! the test starts on a free port, speaking TLS with a certificate authority made by the test
//! and accepting only TLS connections with a SCRAM password (`hostssl`).
//!
//! The server is made with the PostgreSQL 15 binaries (`initdb`, `pg_ctl`) in
//! `/usr/lib/postgresql/15/bin` (or `$TOWER_SIEM_PG_BIN`), run as the `postgres` user when the
//! test runs as root. The system's own PostgreSQL is not touched.
#![cfg(feature = "postgres-tls")]

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::services;
use tower_siem::event::SharedEvent;
use tower_siem::pipeline::{Pipeline, PipelineConfig};
use tower_siem::sink::{PostgresSink, Sink, SinkErrorKind};
use tower_siem::Event;

const USER: &str = "siem";
const PASSWORD: &str = "pw-tls-7Hq2";

/// A CA, and a certificate for `names` signed by it: (CA PEM, server cert PEM, server key PEM).
fn certificates(names: &[&str]) -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let server = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), server.pem(), key.serialize_pem())
}

fn bin(name: &str) -> PathBuf {
    let dir = std::env::var("TOWER_SIEM_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_owned());
    Path::new(&dir).join(name)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args…`, as the `postgres` user when running as root (PostgreSQL refuses root).
fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL server on a free port of 127.0.0.1 taking only TLS (`hostssl`, SCRAM) from
/// TCP, and trusting its Unix socket (for the test's own checks); stopped when dropped.
struct TlsPostgres {
    dir: tempfile::TempDir,
    port: u16,
    ca: String,
}

impl TlsPostgres {
    fn start() -> TlsPostgres {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("tower-siem-pg-tls")
            .tempdir()
            .unwrap();
        let (ca, cert, key) = certificates(&["127.0.0.1", "localhost"]);
        let path = dir.path();
        std::fs::write(path.join("server.crt"), cert).unwrap();
        std::fs::write(path.join("server.key"), key).unwrap();
        std::fs::write(path.join("pw"), format!("{PASSWORD}\n")).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            let key = path.join("server.key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(path);
                    c
                },
                "chown",
            );
        }
        let data = path.join("data");
        let mut initdb = pg_command(&bin("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-A", "scram-sha-256", "-N", "--no-instructions"])
            .arg(format!("--pwfile={}", path.join("pw").display()));
        run(initdb, "initdb");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{dir}'\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             fsync = off\nshared_buffers = 16MB\nmax_connections = 20\n",
            dir = path.display()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(&mut file, conf.as_bytes()).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        let mut start = pg_command(&bin("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(path.join("log"))
            .args(["-w", "-t", "10", "start"]);
        run(start, "pg_ctl start");
        eprintln!(
            "PostgreSQL with TLS on port {port} in {:?}",
            started.elapsed()
        );
        TlsPostgres { dir, port, ca }
    }

    fn url(&self, sslmode: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/postgres?sslmode={sslmode}",
            self.port
        )
    }

    /// A client over the Unix socket (trusted, no TLS), for checking what landed.
    async fn client(&self) -> tokio_postgres::Client {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.dir.path())
            .port(self.port)
            .user(USER)
            .dbname("postgres");
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let mut stop = pg_command(&bin("pg_ctl"));
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
    }
}

fn events(n: usize) -> Vec<SharedEvent> {
    (0..n)
        .map(|i| Arc::new(Event::new("auth.failure").user(format!("user{i}"))) as SharedEvent)
        .collect()
}

async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the PostgreSQL 15 binaries (as the PostgreSQL tests)"]
async fn events_reach_the_table_over_tls_with_a_private_ca() {
    // The service variable marks this as a service-backed test, like the others.
    let _ = services::url("TOWER_SIEM_TEST_POSTGRES");
    let server = TlsPostgres::start();
    let client = server.client().await;

    // verify-full: the chain up to the test's CA, and the name 127.0.0.1.
    let full = PostgresSink::new(&server.url("verify-full"))
        .unwrap()
        .tls_root_certificate(server.ca.as_bytes().to_vec())
        .unwrap()
        .table("tls_full")
        .unwrap()
        .timeout(Duration::from_secs(5));
    let batch = events(3);
    full.write(&batch).await.unwrap();
    let ids: Vec<uuid::Uuid> = client
        .query("SELECT id FROM tls_full ORDER BY user_name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, batch.iter().map(|e| e.id).collect::<Vec<_>>());
    // The connections are encrypted: the server says so.
    let ssl: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE ssl AND usename = $1 AND client_addr IS NOT NULL",
            &[&USER],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl >= 1, "no TLS connection seen by the server");

    // The CA through the URL's sslrootcert, with verify-ca.
    let ca_file = server.dir.path().join("ca.pem");
    std::fs::write(&ca_file, &server.ca).unwrap();
    let url = format!(
        "{}&sslrootcert={}",
        server.url("verify-ca"),
        ca_file.display()
    );
    let ca = PostgresSink::new(&url)
        .unwrap()
        .table("tls_ca")
        .unwrap()
        .timeout(Duration::from_secs(5));
    ca.write(&events(2)).await.unwrap();
    assert_eq!(count(&client, "tls_ca").await, 2);

    // require: encrypted, the certificate not checked (libpq's meaning); prefer takes TLS too.
    for mode in ["require", "prefer"] {
        let table = format!("tls_{mode}");
        let sink = PostgresSink::new(&server.url(mode))
            .unwrap()
            .table(&table)
            .unwrap()
            .timeout(Duration::from_secs(5));
        sink.write(&events(4)).await.unwrap();
        assert_eq!(count(&client, &table).await, 4, "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the PostgreSQL 15 binaries (as the PostgreSQL tests)"]
async fn a_wrong_ca_a_wrong_name_and_plain_tcp_are_refused() {
    let _ = services::url("TOWER_SIEM_TEST_POSTGRES");
    let server = TlsPostgres::start();
    let (other_ca, _, _) = certificates(&["127.0.0.1"]);
    let quick = |url: &str| {
        PostgresSink::new(url)
            .unwrap()
            .table("refused")
            .unwrap()
            .timeout(Duration::from_secs(5))
    };

    // A CA that did not sign the server's certificate.
    let wrong = quick(&server.url("verify-full"))
        .tls_root_certificate(other_ca.as_bytes().to_vec())
        .unwrap();
    let err = wrong.write(&events(1)).await.unwrap_err();
    assert_eq!(err.kind(), SinkErrorKind::Unavailable, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("TLS") && text.contains("certificate"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    // So does require once a CA is given (libpq: it then verifies as verify-ca).
    let wrong = quick(&server.url("require"))
        .tls_root_certificate(other_ca.as_bytes().to_vec())
        .unwrap();
    assert!(wrong.write(&events(1)).await.is_err());
    // The system's roots do not know the test's CA either.
    assert!(quick(&server.url("verify-full"))
        .write(&events(1))
        .await
        .is_err());

    // The right CA but another name: verify-full refuses, verify-ca accepts.
    let renamed = |mode: &str| {
        let url = format!(
            "postgres://{USER}:{PASSWORD}@db.invalid:{}/postgres?sslmode={mode}&hostaddr=127.0.0.1",
            server.port
        );
        quick(&url)
            .tls_root_certificate(server.ca.as_bytes().to_vec())
            .unwrap()
    };
    let err = renamed("verify-full").write(&events(1)).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    renamed("verify-ca").write(&events(1)).await.unwrap();

    // Plain TCP to a hostssl-only server: no pg_hba entry without encryption.
    let err = quick(&server.url("disable"))
        .write(&events(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no encryption"), "{err}");
    assert!(!err.to_string().contains(PASSWORD), "{err}");

    // In a pipeline, the failing sink costs the caller nothing: emit returns at once and the
    // failures are counted, as for any sink that is down.
    let wrong = quick(&server.url("verify-full"))
        .tls_root_certificate(other_ca.as_bytes().to_vec())
        .unwrap();
    let pipeline = Pipeline::new(vec![Box::new(wrong)], PipelineConfig::default());
    let started = Instant::now();
    for i in 0..50 {
        pipeline.emit(Event::new("auth.failure").user(format!("user{i}")));
    }
    assert!(started.elapsed() < Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = pipeline.stats().sink("postgres").cloned().unwrap();
        if s.write_errors >= 1 {
            assert_eq!(s.delivered, 0, "{s:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
