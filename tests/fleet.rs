//! The fleet detector against the real NATS JetStream and Redis: three replicas publish their
//! events; the detector sees the whole fleet, blocks what no replica could see, and every
//! replica's gate applies the block. A restarted detector neither re-reads nor re-decides.
#![cfg(all(feature = "nats", feature = "redis"))]

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::services;
use tokio::sync::oneshot;
use tower_siem::detect::FleetDetector;
use tower_siem::sink::NatsSink;
use tower_siem::store::RedisStore;
use tower_siem::{Action, Event, Siem, Subject};

const WAIT: Duration = Duration::from_secs(15);

struct Fleet {
    stream: String,
    prefix: String,
    namespace: String,
}

impl Fleet {
    fn new(name: &str) -> Fleet {
        let id = services::unique(name);
        Fleet {
            stream: id.to_uppercase(),
            prefix: format!("siem.{id}"),
            namespace: id,
        }
    }

    fn store(&self) -> RedisStore {
        RedisStore::builder(services::url("TOWER_SIEM_TEST_REDIS"))
            .namespace(&self.namespace)
            .build()
            .unwrap()
    }

    async fn replica(&self) -> (Siem, RedisStore) {
        let store = self.store();
        assert!(store.synced(WAIT).await, "{:?}", store.stats());
        let sink = NatsSink::new(services::url("TOWER_SIEM_TEST_NATS"))
            .unwrap()
            .stream(&self.stream)
            .unwrap()
            .subject_prefix(&self.prefix)
            .unwrap();
        let siem = Siem::builder()
            .store(store.clone())
            .sink(sink)
            .build()
            .unwrap();
        (siem, store)
    }

    async fn detector(&self, consumer: &str) -> (Arc<FleetDetector>, Stop) {
        let store = RedisStore::builder(services::url("TOWER_SIEM_TEST_REDIS"))
            .namespace(&self.namespace)
            .share_scores(true)
            .build()
            .unwrap();
        assert!(store.synced(WAIT).await);
        let detector = Arc::new(
            FleetDetector::builder(services::url("TOWER_SIEM_TEST_NATS"), store)
                .stream(&self.stream)
                .subject_prefix(&self.prefix)
                .consumer(consumer)
                .build()
                .unwrap(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let d = detector.clone();
        let running = tokio::spawn(async move {
            d.run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        (detector, Stop { stop, running })
    }
}

/// Stops a running detector.
struct Stop {
    stop: oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
}

impl Stop {
    /// Asks it to stop and waits until it has (after the batch in hand).
    async fn now(self) {
        let _ = self.stop.send(());
        self.running.await.expect("the detector's run ends cleanly");
    }
}

async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn action(siem: &Siem, ip: IpAddr) -> Action {
    siem.verdict_for(&Subject::ip(ip)).action
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS and Redis: set TOWER_SIEM_TEST_NATS and TOWER_SIEM_TEST_REDIS"]
async fn the_detector_blocks_a_credential_stuffing_run_spread_over_three_replicas() {
    let fleet = Fleet::new("stuffing");
    let replicas = [
        fleet.replica().await,
        fleet.replica().await,
        fleet.replica().await,
    ];
    let attacker: IpAddr = "203.0.113.77".parse().unwrap();
    // 24 accounts tried from one address, round-robin: 8 per replica, below every rule's
    // threshold on each (one process blocks at the 11th).
    for i in 0..24 {
        let (siem, _) = &replicas[i % 3];
        siem.fire(
            Event::new("auth.failure")
                .user(format!("customer{i}"))
                .ip(attacker),
        );
    }
    for (siem, _) in &replicas {
        assert!(siem.flush_async(WAIT).await);
        assert!(
            action(siem, attacker) < Action::Block,
            "a replica blocked alone: the test would prove nothing"
        );
    }

    let (detector, stop) = fleet.detector("detect").await;
    until("the detector to read the 24 events", WAIT, || {
        detector.stats().acked >= 24
    })
    .await;
    assert_eq!(action(detector.siem(), attacker), Action::Block);
    let explained = detector
        .siem()
        .explain(&tower_siem::engine::EntityKey::Ip(attacker))
        .unwrap();
    assert!(
        explained
            .contributions
            .iter()
            .any(|c| &*c.rule == "auth.stuffing"),
        "{explained:?}"
    );
    // Every replica's gate refuses the attacker now.
    for (siem, store) in &replicas {
        until("the block to reach a replica", WAIT, || {
            action(siem, attacker) == Action::Block
        })
        .await;
        assert!(store.stats().received >= 1);
    }
    let stats = detector.stats();
    assert_eq!(
        (stats.applied, stats.duplicates, stats.malformed),
        (24, 0, 0)
    );
    stop.now().await;
}

/// An account tried once from each of six networks, two per replica: no replica sees enough
/// networks to act; the detector does, and the step-up it decides (a user is never blocked)
/// reaches every replica through the shared score.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS and Redis: set TOWER_SIEM_TEST_NATS and TOWER_SIEM_TEST_REDIS"]
async fn an_account_attacked_from_many_networks_is_stepped_up_on_every_replica() {
    let fleet = Fleet::new("networks");
    let replicas = [
        fleet.replica().await,
        fleet.replica().await,
        fleet.replica().await,
    ];
    let victim = Subject::user("victim");
    for i in 0..6u8 {
        let (siem, _) = &replicas[usize::from(i) % 3];
        siem.fire(
            Event::new("auth.failure")
                .user("victim")
                .ip(IpAddr::from([198, 18, i, 7])),
        );
    }
    for (siem, _) in &replicas {
        assert!(siem.flush_async(WAIT).await);
        assert_eq!(siem.verdict_for(&victim).action, Action::Allow);
    }
    let (detector, stop) = fleet.detector("networks").await;
    until("the detector to read the 6 events", WAIT, || {
        detector.stats().acked >= 6
    })
    .await;
    assert_eq!(detector.siem().verdict_for(&victim).action, Action::StepUp);
    for (siem, _) in &replicas {
        until("the step-up to reach a replica", WAIT, || {
            siem.verdict_for(&victim).action == Action::StepUp
        })
        .await;
        let why = siem
            .explain(&tower_siem::engine::EntityKey::User("victim".into()))
            .unwrap();
        assert!(
            why.contributions
                .iter()
                .any(|c| &*c.rule == "auth.distributed" && c.sample.is_none()),
            "{why:?}"
        );
    }
    stop.now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS and Redis: set TOWER_SIEM_TEST_NATS and TOWER_SIEM_TEST_REDIS"]
async fn a_restarted_detector_neither_rereads_nor_redecides() {
    let fleet = Fleet::new("restart");
    // A replica that keeps its decisions to itself: every shared decision here is the
    // detector's.
    let replica = Siem::builder()
        .sink(
            NatsSink::new(services::url("TOWER_SIEM_TEST_NATS"))
                .unwrap()
                .stream(&fleet.stream)
                .unwrap()
                .subject_prefix(&fleet.prefix)
                .unwrap(),
        )
        .build()
        .unwrap();
    let attacker: IpAddr = "198.51.100.9".parse().unwrap();
    for i in 0..15 {
        replica.fire(
            Event::new("auth.failure")
                .user(format!("u{i}"))
                .ip(attacker),
        );
    }
    assert!(replica.flush_async(WAIT).await);

    let (first, stop) = fleet.detector("durable").await;
    until("the first run to read 15 events", WAIT, || {
        first.stats().acked >= 15
    })
    .await;
    assert_eq!(action(first.siem(), attacker), Action::Block);
    // Its block is in Redis.
    let first_store_published = first.siem().stats().engine.shared.unwrap().published;
    assert!(first_store_published >= 1);
    stop.now().await;

    // While it is down, ordinary traffic goes on.
    for i in 0..20u8 {
        replica.fire(
            Event::new("auth.success")
                .user(format!("person{i}"))
                .ip(IpAddr::from([192, 0, 2, i + 1])),
        );
    }
    assert!(replica.flush_async(WAIT).await);

    let (second, stop) = fleet.detector("durable").await;
    until("the second run to read the 20 new events", WAIT, || {
        second.stats().acked >= 20
    })
    .await;
    let stats = second.stats();
    // The 15 acknowledged events were not given again; the 20 new ones were, once each.
    assert_eq!(
        (stats.received, stats.applied, stats.duplicates),
        (20, 20, 0)
    );
    // The block was loaded from Redis, not decided again.
    let shared = second.siem().stats().engine.shared.unwrap();
    assert!(shared.loaded >= 1, "{shared:?}");
    assert_eq!(shared.published, 0, "{shared:?}");
    assert_eq!(action(second.siem(), attacker), Action::Block);
    stop.now().await;
}

/// Something on the stream that is not a native event is counted, acknowledged and skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS and Redis: set TOWER_SIEM_TEST_NATS and TOWER_SIEM_TEST_REDIS"]
async fn foreign_messages_on_the_stream_are_counted_and_skipped() {
    let fleet = Fleet::new("foreign");
    let (replica, _) = fleet.replica().await;
    replica.fire(Event::new("auth.success").user("alice"));
    assert!(replica.flush_async(WAIT).await);
    let client = async_nats::connect(services::url("TOWER_SIEM_TEST_NATS"))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    for junk in [&b"not json"[..], b"{}", b"[1,2]"] {
        js.publish(format!("{}.junk", fleet.prefix), junk.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let (detector, stop) = fleet.detector("junk").await;
    until("four messages", WAIT, || detector.stats().acked >= 4).await;
    let stats = detector.stats();
    assert_eq!((stats.applied, stats.malformed), (1, 3));
    stop.now().await;
}

/// `tower-siem detect` as a process: the same fleet-wide block, then a clean exit on Ctrl-C
/// with its counters.
#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS and Redis: set TOWER_SIEM_TEST_NATS and TOWER_SIEM_TEST_REDIS"]
async fn the_detect_command_blocks_and_exits_cleanly() {
    let fleet = Fleet::new("cli");
    let replicas = [fleet.replica().await, fleet.replica().await];
    let attacker: IpAddr = "203.0.113.88".parse().unwrap();
    for i in 0..16 {
        let (siem, _) = &replicas[i % 2];
        siem.fire(
            Event::new("auth.failure")
                .user(format!("c{i}"))
                .ip(attacker),
        );
    }
    for (siem, _) in &replicas {
        assert!(siem.flush_async(WAIT).await);
        assert!(action(siem, attacker) < Action::Block);
    }
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tower-siem"))
        .args(["detect", "--nats", &services::url("TOWER_SIEM_TEST_NATS")])
        .args(["--redis", &services::url("TOWER_SIEM_TEST_REDIS")])
        .args(["--namespace", &fleet.namespace, "--stream", &fleet.stream])
        .args(["--subject-prefix", &fleet.prefix, "--consumer", "cli"])
        .args(["--every", "1s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for (siem, _) in &replicas {
        until("the command's block to reach a replica", WAIT, || {
            action(siem, attacker) == Action::Block
        })
        .await;
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}\n{text}", out.status);
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("events 16 read, 16 judged, 0 repeated, 0 malformed, 16 acknowledged"),
        "{text}"
    );
}

/// Same totals as one process: a password-guessing run on one account from one address,
/// spread round-robin over three replicas, is stepped up and blocked at the same attempts as
/// the same run against one process, when each attempt comes after the previous one's
/// decisions have propagated (replica → JetStream → detector → Redis → every replica). The
/// replicas alone, each seeing a third of the run, stay far behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS and Redis: set TOWER_SIEM_TEST_NATS and TOWER_SIEM_TEST_REDIS"]
async fn a_run_spread_over_three_replicas_is_judged_as_by_one_process() {
    let user = Subject::user("target");
    let ip: IpAddr = "203.0.113.50".parse().unwrap();
    let client = Subject::ip(ip);
    let attempts = 24;
    // The reference: one process.
    let one = Siem::builder().build().unwrap();
    let mut reference = (None, None);
    for k in 1..=attempts {
        one.fire(Event::new("auth.failure").user("target").ip(ip));
        if reference.0.is_none() && one.verdict_for(&user).action >= Action::StepUp {
            reference.0 = Some(k);
        }
        if reference.1.is_none() && one.verdict_for(&client).action == Action::Block {
            reference.1 = Some(k);
        }
    }
    let (Some(step_up_at), Some(block_at)) = reference else {
        panic!("one process never acted: {reference:?}");
    };

    let fleet = Fleet::new("totals");
    let replicas = [
        fleet.replica().await,
        fleet.replica().await,
        fleet.replica().await,
    ];
    let (detector, stop) = fleet.detector("totals").await;
    let mut fleet_at = (None, None);
    for k in 1..=attempts {
        let (siem, _) = &replicas[(k - 1) % 3];
        siem.fire(Event::new("auth.failure").user("target").ip(ip));
        assert!(siem.flush_async(WAIT).await);
        until("the detector to judge the attempt", WAIT, || {
            detector.stats().acked >= k as u64
        })
        .await;
        let published = detector.siem().stats().engine.shared.unwrap().published;
        for (_, store) in &replicas {
            until(
                "the detector's decisions to reach the replicas",
                WAIT,
                || store.stats().received >= published,
            )
            .await;
        }
        let everywhere = |want: Action, who: &Subject| {
            replicas
                .iter()
                .all(|(s, _)| s.verdict_for(who).action >= want)
        };
        if fleet_at.0.is_none() && everywhere(Action::StepUp, &user) {
            fleet_at.0 = Some(k);
        }
        if fleet_at.1.is_none() && everywhere(Action::Block, &client) {
            fleet_at.1 = Some(k);
        }
    }
    println!(
        "one process: step-up at attempt {step_up_at}, block at {block_at}; three replicas with \
         the detector: {fleet_at:?}"
    );
    assert_eq!(fleet_at, (Some(step_up_at), Some(block_at)));
    stop.now().await;
}

/// The same run as fast as the attacker can send (one attempt a millisecond): how many
/// attempts get through before every replica blocks the address. Printed for the record
/// (the detector's decision needs the replicas' pipeline batch, up to 100 ms, to arrive);
/// asserted only that every replica ends up blocking it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS and Redis: set TOWER_SIEM_TEST_NATS and TOWER_SIEM_TEST_REDIS"]
async fn report_a_fast_run_over_three_replicas() {
    let ip: IpAddr = "203.0.113.51".parse().unwrap();
    let client = Subject::ip(ip);
    let fleet = Fleet::new("fast");
    let replicas = [
        fleet.replica().await,
        fleet.replica().await,
        fleet.replica().await,
    ];
    let (_detector, stop) = fleet.detector("fast").await;
    let start = Instant::now();
    let mut blocked_everywhere = None;
    for k in 1..=2_000usize {
        let (siem, _) = &replicas[(k - 1) % 3];
        siem.fire(Event::new("auth.failure").user("target").ip(ip));
        if replicas
            .iter()
            .all(|(s, _)| s.verdict_for(&client).action == Action::Block)
        {
            blocked_everywhere = Some((k, start.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "a fast run over three replicas (one process blocks at attempt 13): blocked on every \
         replica at {blocked_everywhere:?}"
    );
    assert!(blocked_everywhere.is_some());
    stop.now().await;
}
