//! The `tower-siem` command line: see [`tower_siem::cli`].

fn main() -> std::process::ExitCode {
    tower_siem::cli::run()
}
