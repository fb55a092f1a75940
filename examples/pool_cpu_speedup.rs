#[path = "patterns/pool_cpu_speedup.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
