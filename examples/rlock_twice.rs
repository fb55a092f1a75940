#[path = "patterns/rlock_twice.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
