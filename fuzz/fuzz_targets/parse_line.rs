//! Any bytes through every line parser and the format detector: no panic, and what parses
//! is well formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_siem::cli::triage::parse::{detect, parse_line, Format};

fuzz_target!(|data: &[u8]| {
    for format in [Format::Common, Format::Combined, Format::Json] {
        if let Ok(line) = parse_line(format, data) {
            // 1970-01-01 ..= 9999-12-31, give or take a day of UTC offset.
            assert!((-86_400_000..=253_402_387_200_000).contains(&line.time_ms));
            assert!((100..=999).contains(&line.status));
            assert!(line.path().len() <= line.target.len().max(1));
            let _ = line.query();
        }
    }
    let _ = detect(data.split(|&b| b == b'\n'));
});
