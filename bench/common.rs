//! What the benchmark binaries share (included with `#[path]`).

#![allow(dead_code)]

/// The `p` quantile (0–1) of sorted figures, nearest rank; NaN when empty.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The arguments after `--bench` (absent when cargo runs the binary without
/// it, as `cargo test --all-targets` does); exits with `usage` when fewer
/// than `min`.
pub fn bench_args(min: usize, usage: &str) -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--bench")?;
    let rest = args[i + 1..].to_vec();
    if rest.len() < min {
        eprintln!("usage: {usage}");
        std::process::exit(2);
    }
    Some(rest)
}
