//! Side-by-side benchmarks: this crate, CPython's `multiprocessing` and the C floor of this
//! machine, measured in one run and printed as ratios.
//!
//! `cargo bench --bench compare` runs every row. Set `ROUNDS`
//! (default 3), `SCALE` (default 1, multiplies iteration counts) and `ONLY` (comma-separated row
//! labels' prefixes) in the environment. The CPython suite (`../shared/bench/py_mp_bench.py`) and
//! the C program (`../shared/bench/limits.c`, compiled into `target/`) run between our rounds,
//! interleaved, because this machine drifts by ±30 % from minute to minute: only ratios within
//! one run mean anything. Each cell is the median of the rounds.

#[cfg(feature = "cluster")]
mod cluster;
mod harness;
mod manager;
mod pool;
mod process;
mod queue;
mod rayon;
mod sync;

fn main() {
    // A cluster row's worker node is this binary again, in worker mode.
    #[cfg(feature = "cluster")]
    multiproc::cluster::serve_if_worker().expect("worker mode");
    let rows: Vec<harness::Row> = [
        process::rows(),
        pool::rows(),
        sync::rows(),
        queue::rows(),
        manager::rows(),
        rayon::rows(),
        #[cfg(feature = "cluster")]
        cluster::rows(),
    ]
    .into_iter()
    .flatten()
    .collect();
    harness::run(rows);
}
