#[path = "patterns/pool_progress.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
