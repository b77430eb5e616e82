//! `RedisStore` over TLS (`rediss://`, feature `redis-tls`) against a real `redis-server` with a
//! certificate authority made by the test, and with an ACL user limited to its namespace.
#![cfg(feature = "redis-tls")]

mod support;

use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::services;
use tower_siem::engine::EntityKey;
use tower_siem::store::RedisStore;
use tower_siem::{Action, Siem, Subject};

const WAIT: Duration = Duration::from_secs(10);

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

/// A `redis-server` speaking only TLS on a free port; killed when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    fn start(dir: &Path, ca: &str, cert: &str, key: &str) -> TlsRedis {
        for (name, pem) in [("ca.pem", ca), ("cert.pem", cert), ("key.pem", key)] {
            std::fs::write(dir.join(name), pem).unwrap();
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--tls-cert-file")
            .arg(dir.join("cert.pem"))
            .arg("--tls-key-file")
            .arg(dir.join("key.pem"))
            .arg("--tls-ca-cert-file")
            .arg(dir.join("ca.pem"))
            .args(["--tls-auth-clients", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH (.ci/run installs it)");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < WAIT,
                "redis-server with TLS did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsRedis { child, port }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn action(siem: &Siem, ip: IpAddr) -> Action {
    siem.verdict_for(&Subject::ip(ip)).action
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server on the PATH (as the Redis tests)"]
async fn decisions_are_shared_over_tls_with_a_private_ca() {
    // The service variable marks this as a service-backed test, like the others.
    let _ = services::url("TOWER_SIEM_TEST_REDIS");
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates();
    let server = TlsRedis::start(dir.path(), &ca, &cert, &key);
    let url = format!("rediss://127.0.0.1:{}/", server.port);
    let replica = |ca: Option<&str>| {
        let mut b = RedisStore::builder(&url).namespace("tls");
        if let Some(ca) = ca {
            b = b.tls_root_certificate(ca.as_bytes().to_vec());
        }
        let store = b.build().unwrap();
        let siem = Siem::builder().store(store.clone()).build().unwrap();
        (siem, store)
    };
    let (a, a_store) = replica(Some(&ca));
    let (b, b_store) = replica(Some(&ca));
    assert!(a_store.synced(WAIT).await, "{:?}", a_store.stats());
    assert!(b_store.synced(WAIT).await, "{:?}", b_store.stats());
    let x = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 90));
    a.block(&EntityKey::Ip(x), Duration::from_secs(60));
    let start = Instant::now();
    while action(&b, x) != Action::Block {
        assert!(start.elapsed() < WAIT, "{:?}", b_store.stats());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // Without the CA, the server's certificate is not trusted: no connection, counted.
    let (_, untrusting) = replica(None);
    assert!(!untrusting.synced(Duration::from_secs(2)).await);
    let stats = untrusting.stats();
    assert!(!stats.connected && stats.errors >= 1, "{stats:?}");

    // Plain TCP to the TLS port gets nowhere either.
    let plain = RedisStore::builder(format!("redis://127.0.0.1:{}/", server.port))
        .namespace("tls")
        .build()
        .unwrap();
    assert!(!plain.synced(Duration::from_secs(2)).await);
}

/// An ACL user limited to its namespace's keys and channel is all a replica needs; a wrong
/// password is refused and counted, and never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis: set TOWER_SIEM_TEST_REDIS"]
async fn an_acl_user_limited_to_its_namespace_is_enough() {
    let base = services::url("TOWER_SIEM_TEST_REDIS");
    let ns = services::unique("acl");
    let user = format!("siem_{ns}");
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let mut admin = redis::Client::open(base.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("reset")
        .arg("on")
        .arg(format!(">{password}"))
        .arg(format!("~tower-siem:{{{ns}}}:*"))
        .arg(format!("&tower-siem:{{{ns}}}:*"))
        .arg("+@connection")
        .arg(
            &[
                "+get",
                "+set",
                "+del",
                "+mget",
                "+scan",
                "+publish",
                "+subscribe",
            ][..],
        )
        .query_async(&mut admin)
        .await
        .unwrap();
    let host = base.trim_start_matches("redis://");
    let url = |pw: &str| format!("redis://{user}:{pw}@{host}");
    let store = |url: String| {
        let store = RedisStore::builder(url).namespace(&ns).build().unwrap();
        let siem = Siem::builder().store(store.clone()).build().unwrap();
        (siem, store)
    };
    let (a, a_store) = store(url(&password));
    let (b, b_store) = store(url(&password));
    assert!(a_store.synced(WAIT).await, "{:?}", a_store.stats());
    assert!(b_store.synced(WAIT).await, "{:?}", b_store.stats());
    let x = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 91));
    a.block(&EntityKey::Ip(x), Duration::from_secs(60));
    let start = Instant::now();
    while action(&b, x) != Action::Block {
        assert!(start.elapsed() < WAIT, "{:?}", b_store.stats());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(a_store.stats().errors, 0);

    let (_, wrong) = store(url("not-the-password"));
    assert!(!wrong.synced(Duration::from_secs(2)).await);
    assert!(wrong.stats().errors >= 1);
    assert!(!format!("{wrong:?}").contains(&password));

    let _: i64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut admin)
        .await
        .unwrap();
}
