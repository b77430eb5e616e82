//! `NatsSink` and the fleet detector over TLS against throw-away `nats-server`s that the test
//! starts on free ports with JetStream and a certificate authority made by the test: one with
//! two users (a password, an NKey), one in operator mode (an operator, account and user JWT
//! made and signed here) for a credentials file. The system's own NATS is not touched.
#![cfg(feature = "nats")]

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::services;
use tower_siem::event::SharedEvent;
use tower_siem::sink::{NatsSink, Sink, SinkErrorKind};
use tower_siem::Event;

const WAIT: Duration = Duration::from_secs(10);
const USER: &str = "alice";
const PASSWORD: &str = "pw-nats-Zr81";

/// A CA, and a certificate for 127.0.0.1 signed by it: (CA PEM, server cert PEM, server key PEM).
fn certificates() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), server.pem(), key.serialize_pem())
}

fn nats_server() -> PathBuf {
    let installed = Path::new("/usr/sbin/nats-server");
    if installed.exists() {
        installed.to_owned()
    } else {
        PathBuf::from("nats-server")
    }
}

/// A `nats-server` with JetStream speaking only TLS on a free port; killed when dropped.
struct TlsNats {
    child: Child,
    port: u16,
    ca: String,
    /// The NKey user's seed.
    seed: String,
    _dir: tempfile::TempDir,
}

impl TlsNats {
    fn start() -> TlsNats {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let (ca, cert, key) = certificates();
        std::fs::write(path.join("server.crt"), cert).unwrap();
        std::fs::write(path.join("server.key"), key).unwrap();
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            r#"
listen: "127.0.0.1:{port}"
jetstream {{ store_dir: "{dir}/js" }}
tls {{
  cert_file: "{dir}/server.crt"
  key_file: "{dir}/server.key"
  timeout: 2
}}
authorization {{
  users = [
    {{ user: "{USER}", password: "{PASSWORD}" }}
    {{ nkey: "{nkey}" }}
  ]
}}
"#,
            dir = path.display(),
            nkey = user.public_key(),
        );
        std::fs::write(path.join("nats.conf"), conf).unwrap();
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(path.join("nats.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server at /usr/sbin/nats-server or on the PATH");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < WAIT, "nats-server with TLS did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsNats {
            child,
            port,
            ca,
            seed,
            _dir: dir,
        }
    }

    fn url(&self, scheme: &str, auth: &str) -> String {
        format!("{scheme}://{auth}127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn events(n: usize) -> Vec<SharedEvent> {
    (0..n)
        .map(|i| Arc::new(Event::new("auth.failure").user(format!("user{i}"))) as SharedEvent)
        .collect()
}

fn sink(url: &str, stream: &str) -> NatsSink {
    NatsSink::new(url)
        .unwrap()
        .stream(stream)
        .unwrap()
        .subject_prefix(format!("tls.{stream}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .ack_timeout(Duration::from_secs(3))
}

/// Messages in `stream`, read with a client of the test's own (password user, the CA).
async fn stored(server: &TlsNats, stream: &str) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &server.ca).unwrap();
    let client = async_nats::ConnectOptions::new()
        .user_and_password(USER.to_owned(), PASSWORD.to_owned())
        .add_root_certificates(ca)
        .require_tls(true)
        .connect(server.url("tls", ""))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server (as the NATS tests)"]
async fn events_are_published_over_tls_with_a_password_or_an_nkey() {
    // The service variable marks this as a service-backed test, like the others.
    let _ = services::url("TOWER_SIEM_TEST_NATS");
    let server = TlsNats::start();
    let ca = server.ca.as_bytes().to_vec();

    // tls:// with the user and password in the URL.
    let password = sink(&server.url("tls", &format!("{USER}:{PASSWORD}@")), "TLS_PW")
        .tls_root_certificate(ca.clone())
        .unwrap();
    let batch = events(5);
    password.write(&batch).await.unwrap();
    // Retried: stored once (the ids), as over plain TCP.
    password.write(&batch).await.unwrap();
    assert_eq!(stored(&server, "TLS_PW").await, 5);

    // nats:// with the CA (which implies TLS) and an NKey: the seed signs the server's nonce.
    let nkey = sink(&server.url("nats", ""), "TLS_NKEY")
        .tls_root_certificate(ca.clone())
        .unwrap()
        .nkey(server.seed.clone())
        .unwrap();
    nkey.write(&events(3)).await.unwrap();
    assert_eq!(stored(&server, "TLS_NKEY").await, 3);
    let debug = format!("{nkey:?} {password:?}");
    assert!(!debug.contains(&server.seed), "{debug}");
    assert!(!debug.contains(PASSWORD), "{debug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server (as the NATS tests)"]
async fn a_wrong_ca_wrong_credentials_and_no_tls_are_refused() {
    let _ = services::url("TOWER_SIEM_TEST_NATS");
    let server = TlsNats::start();
    let (other_ca, _, _) = certificates();

    // A CA that did not sign the server's certificate.
    let wrong_ca = sink(&server.url("tls", &format!("{USER}:{PASSWORD}@")), "TLS_X")
        .tls_root_certificate(other_ca.into_bytes())
        .unwrap();
    let err = wrong_ca.write(&events(1)).await.unwrap_err();
    assert_eq!(err.kind(), SinkErrorKind::Unavailable, "{err}");
    let text = err.to_string();
    assert!(text.contains("invalid peer certificate"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");

    // The right CA, a wrong password: refused, the password never shown.
    let wrong_pw = sink(
        &server.url("tls", &format!("{USER}:not-{PASSWORD}@")),
        "TLS_X",
    )
    .tls_root_certificate(server.ca.as_bytes().to_vec())
    .unwrap();
    let err = wrong_pw.write(&events(1)).await.unwrap_err();
    assert!(err.to_string().contains("authorization"), "{err}");
    assert!(!err.to_string().contains(PASSWORD), "{err}");

    // An NKey the server does not know.
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let err = sink(&server.url("nats", ""), "TLS_X")
        .tls_root_certificate(server.ca.as_bytes().to_vec())
        .unwrap()
        .nkey(stranger.clone())
        .unwrap()
        .write(&events(1))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(&stranger), "{err}");

    // A plain nats:// URL, no CA: the server requires TLS, and the system's roots do not know
    // the test's CA.
    let plain = sink(&server.url("nats", &format!("{USER}:{PASSWORD}@")), "TLS_X");
    assert!(plain.write(&events(1)).await.is_err());
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server, and Redis: set TOWER_SIEM_TEST_REDIS"]
async fn the_detector_reads_over_tls_with_an_nkey() {
    use tower_siem::detect::FleetDetector;
    use tower_siem::store::RedisStore;

    let server = TlsNats::start();
    let ca = server.ca.as_bytes().to_vec();
    let stream = "TLS_DETECT";
    sink(&server.url("tls", &format!("{USER}:{PASSWORD}@")), stream)
        .tls_root_certificate(ca.clone())
        .unwrap()
        .write(&events(4))
        .await
        .unwrap();

    let store = RedisStore::builder(services::url("TOWER_SIEM_TEST_REDIS"))
        .namespace(services::unique("tls"))
        .build()
        .unwrap();
    let detector = FleetDetector::builder(server.url("tls", ""), store)
        .stream(stream)
        .subject_prefix(format!("tls.{stream}"))
        .consumer("tls-detect")
        .tls_root_certificate(ca)
        .unwrap()
        .nkey(server.seed.clone())
        .unwrap()
        .build()
        .unwrap();
    assert!(!format!("{detector:?}").contains(&server.seed));
    let detector = Arc::new(detector);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let d = Arc::clone(&detector);
        tokio::spawn(async move {
            d.run(async {
                let _ = stopped.await;
            })
            .await
        })
    };
    let start = Instant::now();
    while detector.stats().acked < 4 {
        assert!(start.elapsed() < WAIT, "{:?}", detector.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    running.await.unwrap().unwrap();

    // With a CA that did not sign the server's certificate, the detector does not start.
    let store = RedisStore::builder(services::url("TOWER_SIEM_TEST_REDIS"))
        .namespace(services::unique("tls"))
        .build()
        .unwrap();
    let (other_ca, _, _) = certificates();
    let refused = FleetDetector::builder(server.url("tls", ""), store)
        .stream(stream)
        .tls_root_certificate(other_ca.into_bytes())
        .unwrap()
        .nkey(server.seed.clone())
        .unwrap()
        .build()
        .unwrap();
    let err = refused.run(async {}).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

/// Base64url without padding, as JWTs use.
fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A NATS JWT with these claims (`nats` part), issued by `issuer` about `subject`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let claims = serde_json::json!({
        "jti": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        "iat": 1_700_000_000u64,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let head = b64url(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64url(claims.to_string().as_bytes());
    let signed = format!("{head}.{body}");
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64url(&signature))
}

/// A `nats-server` in operator mode (an operator, an account with JetStream, a user whose
/// credentials file the test writes), speaking only TLS; killed when dropped.
struct OperatorNats {
    child: Child,
    port: u16,
    ca: String,
    creds: PathBuf,
    _dir: tempfile::TempDir,
}

impl OperatorNats {
    fn start() -> OperatorNats {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let (ca, cert, key) = certificates();
        std::fs::write(path.join("server.crt"), cert).unwrap();
        std::fs::write(path.join("server.key"), key).unwrap();
        let operator = nkeys::KeyPair::new_operator();
        let account = nkeys::KeyPair::new_account();
        // JetStream needs a system account.
        let system = nkeys::KeyPair::new_account();
        let user = nkeys::KeyPair::new_user();
        let system_jwt = jwt(
            &operator,
            &system.public_key(),
            "SYS",
            serde_json::json!({"type": "account", "version": 2}),
        );
        let operator_jwt = jwt(
            &operator,
            &operator.public_key(),
            "test-operator",
            serde_json::json!({"type": "operator", "version": 2}),
        );
        let account_jwt = jwt(
            &operator,
            &account.public_key(),
            "test-account",
            serde_json::json!({
                "limits": {
                    "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                    "wildcards": true, "conn": -1, "leaf": -1,
                    "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1
                },
                "default_permissions": {"pub": {}, "sub": {}},
                "type": "account",
                "version": 2
            }),
        );
        let user_jwt = jwt(
            &account,
            &user.public_key(),
            "test-user",
            serde_json::json!({
                "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                "type": "user", "version": 2
            }),
        );
        let creds = path.join("user.creds");
        std::fs::write(
            &creds,
            format!(
                "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
                 ************************* IMPORTANT *************************\n\
                 NKEY Seed printed below can be used to sign and prove identity.\n\n\
                 -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
                user.seed().unwrap()
            ),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            r#"
listen: "127.0.0.1:{port}"
jetstream {{ store_dir: "{dir}/js" }}
tls {{
  cert_file: "{dir}/server.crt"
  key_file: "{dir}/server.key"
  timeout: 2
}}
operator: "{operator_jwt}"
system_account: "{system}"
resolver: MEMORY
resolver_preload: {{
  {account}: "{account_jwt}"
  {system}: "{system_jwt}"
}}
"#,
            dir = path.display(),
            account = account.public_key(),
            system = system.public_key(),
        );
        std::fs::write(path.join("nats.conf"), conf).unwrap();
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(path.join("nats.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path.join("log")).unwrap())
            .spawn()
            .expect("nats-server at /usr/sbin/nats-server or on the PATH");
        let mut server = OperatorNats {
            child,
            port,
            ca,
            creds,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(server._dir.path().join("log"));
                panic!("nats-server in operator mode exited ({status}): {log:?}");
            }
            assert!(
                start.elapsed() < WAIT,
                "nats-server in operator mode did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server.port = port;
        server
    }
}

impl Drop for OperatorNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server (as the NATS tests)"]
async fn events_are_published_with_a_credentials_file() {
    let _ = services::url("TOWER_SIEM_TEST_NATS");
    let server = OperatorNats::start();
    let url = format!("tls://127.0.0.1:{}", server.port);
    let with_creds = sink(&url, "TLS_CREDS")
        .tls_root_certificate(server.ca.as_bytes().to_vec())
        .unwrap()
        .credentials_file(&server.creds);
    with_creds.write(&events(3)).await.unwrap();

    // Without them, or with a file that is not there, no connection.
    let without = sink(&url, "TLS_CREDS")
        .tls_root_certificate(server.ca.as_bytes().to_vec())
        .unwrap();
    assert!(without.write(&events(1)).await.is_err());
    let missing = without.credentials_file(server.creds.with_extension("gone"));
    let err = missing.write(&events(1)).await.unwrap_err();
    assert!(err.to_string().contains("credentials file"), "{err}");
}

/// `tower-siem detect` with `--nats-ca` and `--nats-nkey`: reads the stream over TLS, and
/// prints the URLs without their passwords.
#[cfg(all(feature = "cli", feature = "redis"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server, and Redis: set TOWER_SIEM_TEST_REDIS"]
async fn the_detect_command_connects_over_tls_with_an_nkey_file() {
    let server = TlsNats::start();
    let stream = "TLS_CLI";
    sink(&server.url("tls", &format!("{USER}:{PASSWORD}@")), stream)
        .tls_root_certificate(server.ca.as_bytes().to_vec())
        .unwrap()
        .write(&events(3))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let seed = dir.path().join("user.nk");
    std::fs::write(&ca, &server.ca).unwrap();
    std::fs::write(&seed, format!("{}\n", server.seed)).unwrap();
    let run = |nats: String, extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tower-siem"))
            .args(["detect", "--nats", &nats])
            .args(["--redis", &services::url("TOWER_SIEM_TEST_REDIS")])
            .args(["--namespace", &services::unique("tls")])
            .args([
                "--stream",
                stream,
                "--subject-prefix",
                &format!("tls.{stream}"),
            ])
            .args(["--consumer", "cli", "--every", "1s"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A password in the URL (not used with an NKey, but never to be printed).
    let nats = server.url("tls", "");
    let child = run(
        nats.replace("tls://", "tls://nobody:hidden-pw@"),
        &[
            "--nats-ca",
            ca.to_str().unwrap(),
            "--nats-nkey",
            seed.to_str().unwrap(),
        ],
    );
    // Wait for a counters line showing the three events acknowledged, then Ctrl-C.
    let mut child = child;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let start = Instant::now();
    while !text.contains("3 acknowledged") && start.elapsed() < WAIT {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = child.wait_with_output().unwrap();
    reader.join().unwrap();
    text.extend(rx.try_iter().map(|l| l + "\n"));
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{text}\n{errors}", out.status);
    assert!(
        !text.contains("hidden-pw") && !errors.contains("hidden-pw"),
        "{text}{errors}"
    );
    assert!(!text.contains(&server.seed), "{text}");
    assert!(text.contains("tls://nobody:***@127.0.0.1"), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(last.contains("3 acknowledged"), "{text}");

    // Without the CA, it cannot start: the certificate is not trusted.
    let child = run(nats, &["--nats-nkey", seed.to_str().unwrap()]);
    let out = child.wait_with_output().unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(errors.contains("certificate"), "{errors}");
}
