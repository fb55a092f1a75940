//! The runner: rounds of our rows (each in a fresh process), CPython's and C's, then a table of
//! medians and ratios.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A figure from the shared bench kit's JSON-lines records: a bench name and the params that
/// select one of its records.
pub struct Ref {
    /// The name that selects the benchmark on the kit program's command line.
    pub suite: &'static str,
    /// The `bench` field of the records it writes.
    pub bench: &'static str,
    pub params: &'static [(&'static str, &'static str)],
}

/// One line of the table.
pub struct Row {
    pub label: &'static str,
    /// The unit of all three figures, as the kit's records give it (`us`, `msgs/s`, ..).
    pub unit: &'static str,
    /// Rates are better higher; times, lower.
    pub higher_is_better: bool,
    /// Measures this crate once, at the given scale; returns the figure in `unit`.
    pub ours: fn(scale: f64) -> f64,
    pub python: Option<Ref>,
    pub c_floor: Option<Ref>,
}

/// `base` iterations scaled by the run's `SCALE`, but at least 10, so that a smoke run still
/// measures something.
pub fn scaled(base: f64, scale: f64) -> u64 {
    ((base * scale) as u64).max(10)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn kit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench")
}

/// CPython suites the kit does not have, each with the script of ours (next to this file) that
/// measures it in the kit's record shape.
const OUR_PY_SUITES: &[(&str, &str)] = &[
    ("pool_map_warm", "py_warm_map.py"),
    ("pool_map_kilobytes", "py_warm_map.py"),
    ("pool_create_by_method", "py_pool_start.py"),
    ("manager_set_get", "../py_manager_bench.py"),
    ("manager_tcp_set_get", "../py_manager_bench.py"),
    ("manager_locked_increment", "../py_manager_bench.py"),
    ("manager_start", "../py_manager_bench.py"),
    ("manager_custom_call", "../py_manager_bench.py"),
];

/// The CPython script that measures `suite`: ours if we wrote one, else the kit's.
fn py_script(suite: &str) -> PathBuf {
    match OUR_PY_SUITES.iter().find(|(name, _)| *name == suite) {
        Some((_, script)) => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches/compare")
            .join(script),
        None => kit().join("py_mp_bench.py"),
    }
}

/// Compiles `limits.c` into the target directory (the kit's folder may be read-only).
fn build_limits() -> Option<PathBuf> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/limits");
    let status = Command::new("cc")
        .args(["-O2", "-Wall", "-std=gnu11", "-o"])
        .arg(&out)
        .arg(kit().join("limits.c"))
        .arg("-pthread")
        .status()
        .ok()?;
    status.success().then_some(out)
}

/// Runs a kit program and parses its JSON-lines records.
fn records(mut command: Command) -> Vec<Value> {
    let Ok(output) = command.output() else {
        eprintln!("could not run {command:?}");
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn matches(record: &Value, wanted: &Ref) -> bool {
    record["bench"] == wanted.bench
        && record["ok"] == true
        && wanted.params.iter().all(|(key, value)| {
            let got = &record["params"][*key];
            got.as_str().map_or_else(|| got.to_string(), str::to_owned) == *value
        })
}

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn figure(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) if v >= 1e6 => format!("{:.2} M {unit}", v / 1e6),
        Some(v) if v >= 1e4 => format!("{:.1} k {unit}", v / 1e3),
        Some(v) if v >= 100.0 => format!("{v:.0} {unit}"),
        Some(v) => format!("{v:.3} {unit}"),
    }
}

/// How many times better `ours` is than `other` (above 1: ours is faster).
fn speedup(row: &Row, ours: Option<f64>, other: Option<f64>) -> String {
    match (ours, other) {
        (Some(o), Some(x)) if o > 0.0 && x > 0.0 => {
            let ratio = if row.higher_is_better { o / x } else { x / o };
            format!("{ratio:.2}x")
        }
        _ => "-".to_owned(),
    }
}

/// The environment variable that makes this program measure one row and print its figure.
const ONE_ROW: &str = "MULTIPROC_BENCH_ROW";

/// The environment variable that adds variants of our rows, measured side by side with them:
/// `;`-separated sets of environment for our side, each a space-separated list of `NAME=VALUE`.
/// Each row is then measured once plainly and once under each set, in the same interleaved rounds,
/// and printed once more per set, its label followed by the set in brackets (the CPython and C
/// columns repeat). `prefault` stands for prefaulting (`MULTIPROC_PREFAULT`, see
/// `runtime/src/sys/mem.rs`) all off, then each use off in turn, so that one run compares them:
///
/// ```text
/// MULTIPROC_BENCH_ENV=prefault ONLY='Pool(2)' cargo bench --bench compare
/// ```
const VARIANTS: &str = "MULTIPROC_BENCH_ENV";

/// What `prefault` in [`VARIANTS`] stands for: every use of prefaulting off, then each one off
/// (the names of `Prefault` in `runtime/src/sys/mem.rs`).
const PREFAULT_VARIANTS: &str =
    "MULTIPROC_PREFAULT=0;MULTIPROC_PREFAULT=-result_vector;MULTIPROC_PREFAULT=-ring";

/// Environment for our side of a row: `NAME=VALUE` pairs, and how they are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Variant {
    shown: String,
    vars: Vec<(String, String)>,
}

/// The variants [`VARIANTS`] asks for, after the plain row (no extra environment).
fn variants() -> Vec<Variant> {
    let asked = std::env::var(VARIANTS).unwrap_or_default();
    let plain = Variant {
        shown: String::new(),
        vars: Vec::new(),
    };
    let sets = asked
        .split(';')
        .flat_map(|set| match set.trim() {
            "prefault" => PREFAULT_VARIANTS.split(';').collect(),
            set => vec![set],
        })
        .map(str::trim)
        .filter(|set| !set.is_empty());
    let extra = sets.map(|set| Variant {
        shown: set.to_owned(),
        vars: set
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
    });
    std::iter::once(plain).chain(extra).collect()
}

/// Measures `row` in a fresh process (this program, run again), with the extra environment of
/// `variant`: a row's figure must not depend on what earlier rows left in the process (heap,
/// mappings), which changes what a fork costs. The kit's CPython suite runs each benchmark in a
/// fresh interpreter for the same reason.
fn measure_alone(row: &Row, scale: f64, variant: &Variant) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let output = Command::new(exe)
        .env(ONE_ROW, row.label)
        .env("SCALE", scale.to_string())
        .envs(variant.vars.iter().map(|(name, value)| (name, value)))
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "row `{}` failed: {}",
            row.label,
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let figure = stdout.trim().parse().ok();
    if figure.is_none() {
        eprintln!("row `{}` printed no figure: {stdout:?}", row.label);
    }
    figure
}

/// In a process started by [`measure_alone`]: measures the one row asked for, prints its
/// figure, and returns `true`.
fn serve_one_row(rows: &[Row]) -> bool {
    let Ok(label) = std::env::var(ONE_ROW) else {
        return false;
    };
    match rows.iter().find(|r| r.label == label) {
        Some(row) => println!("{}", (row.ours)(env_or("SCALE", 1.0))),
        None => eprintln!("no row is labelled `{label}`"),
    }
    true
}

pub fn run(rows: Vec<Row>) {
    if serve_one_row(&rows) {
        return;
    }
    let rounds: usize = env_or("ROUNDS", 3);
    let scale: f64 = env_or("SCALE", 1.0);
    let only: Vec<String> = std::env::var("ONLY")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| only.is_empty() || only.iter().any(|o| r.label.starts_with(o.as_str())))
        .collect();
    let py_benches: BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| r.python.as_ref().map(|p| p.suite))
        .collect();
    let c_benches: BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| r.c_floor.as_ref().map(|c| c.suite))
        .collect();
    let limits = build_limits();
    if limits.is_none() {
        eprintln!("could not compile limits.c: the C column stays empty");
    }

    let mut scripts: HashMap<PathBuf, Vec<&str>> = HashMap::new();
    for suite in &py_benches {
        scripts.entry(py_script(suite)).or_default().push(suite);
    }

    let variants = variants();
    let mut ours: HashMap<(&str, usize), Vec<f64>> = HashMap::new();
    let mut python: Vec<Value> = Vec::new();
    let mut c: Vec<Value> = Vec::new();
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}: multiproc");
        for row in &rows {
            for (index, variant) in variants.iter().enumerate() {
                let figure = measure_alone(row, scale, variant);
                ours.entry((row.label, index)).or_default().extend(figure);
            }
        }
        if !py_benches.is_empty() {
            eprintln!("round {round}/{rounds}: CPython");
        }
        for (script, suites) in &scripts {
            let mut py = Command::new("python3");
            py.arg(script).arg("--only").arg(suites.join(","));
            py.arg("--scale").arg(scale.to_string());
            python.extend(records(py));
        }
        if let (Some(limits), false) = (&limits, c_benches.is_empty()) {
            eprintln!("round {round}/{rounds}: C floor");
            let mut cmd = Command::new(limits);
            cmd.args(c_benches.iter())
                .arg("--scale")
                .arg(scale.to_string());
            c.extend(records(cmd));
        }
    }

    let pick = |records: &[Value], wanted: &Option<Ref>| {
        wanted.as_ref().and_then(|w| {
            median(
                records
                    .iter()
                    .filter(|r| matches(r, w))
                    .filter_map(|r| r["value"].as_f64())
                    .collect(),
            )
        })
    };
    println!("\nmedians of {rounds} interleaved rounds, scale {scale}\n");
    println!("| measurement | multiproc | CPython 3.11 | C floor | multiproc vs CPython | multiproc vs C floor |");
    println!("|---|---:|---:|---:|---:|---:|");
    for row in &rows {
        let py = pick(&python, &row.python);
        let floor = pick(&c, &row.c_floor);
        for (index, variant) in variants.iter().enumerate() {
            let mine = median(ours.remove(&(row.label, index)).unwrap_or_default());
            let label = match variant.shown.as_str() {
                "" => row.label.to_owned(),
                shown => format!("{} [{shown}]", row.label),
            };
            println!(
                "| {label} | {} | {} | {} | {} | {} |",
                figure(mine, row.unit),
                figure(py, row.unit),
                figure(floor, row.unit),
                speedup(row, mine, py),
                speedup(row, mine, floor),
            );
        }
    }
}
