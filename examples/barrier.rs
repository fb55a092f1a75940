#[path = "patterns/barrier.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
