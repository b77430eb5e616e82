//! `tower-siem events`, the real binary, over a store the SIEM wrote.
#![cfg(feature = "cli")]

use std::process::Command;
use std::time::Duration;

use tower_siem::sink::SqliteSink;
use tower_siem::{Event, Siem};

fn tower_siem() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tower-siem"));
    cmd.env_remove("TOWER_SIEM_DB");
    cmd
}

#[test]
fn events_command_reads_what_the_siem_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let siem = Siem::builder().sink(SqliteSink::new(&db)).build().unwrap();
    for _ in 0..3 {
        siem.fire(
            Event::new("auth.failure")
                .user("alice")
                .ip("203.0.113.7".parse().unwrap()),
        );
    }
    siem.fire(
        Event::new("auth.success")
            .user("bob")
            .ip("192.0.2.8".parse().unwrap()),
    );
    assert!(siem.flush(Duration::from_secs(10)));

    // The application still holds the file open for writing: reading works alongside.
    let out = tower_siem()
        .args(["events", "--db"])
        .arg(&db)
        .args(["--user", "alice", "--since", "1h", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let events: Vec<Event> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{stdout}");
    assert!(events.iter().all(|e| e.name == "auth.failure"));

    let out = tower_siem()
        .args(["events", "--ip", "192.0.2.8"])
        .env("TOWER_SIEM_DB", &db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("TIME") && lines[0].contains("ACTION"));
    assert!(lines[1].contains("auth.success") && lines[1].contains("bob"));
    siem.shutdown(Duration::from_secs(5));
}

#[test]
fn events_command_fails_clearly_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = tower_siem()
        .args(["events", "--db"])
        .arg(dir.path().join("missing.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tower-siem events:") && stderr.contains("missing.db"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
