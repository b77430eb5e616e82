//! CPU time from Linux's `/proc`, shared by the benches (`#[path]`-included).

use std::path::Path;
use std::time::Duration;

/// utime + stime from a `stat` file (`/proc/self/stat`, `/proc/self/task/<tid>/stat`), taken
/// as 100 ticks per second; zero when the file cannot be read (not Linux).
pub fn stat_cpu(stat: &Path) -> Duration {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    // The command name may hold spaces; count fields after its closing parenthesis: utime
    // and stime (fields 14 and 15) are then at indexes 11 and 12.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// CPU time this process has used, all threads together.
#[allow(dead_code)] // each bench uses one of the two
pub fn process_cpu() -> Duration {
    stat_cpu(Path::new("/proc/self/stat"))
}

/// Each live thread of this process: (thread id, name, CPU time used).
#[allow(dead_code)]
pub fn thread_cpu() -> Vec<(String, String, Duration)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            let tid = task.file_name().to_string_lossy().into_owned();
            Some((tid, name.trim().to_owned(), stat_cpu(&path.join("stat"))))
        })
        .collect()
}
