#[path = "patterns/pool_long_tasks.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
