#[path = "patterns/pids.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
