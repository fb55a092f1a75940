#[path = "patterns/watch_drink_eat.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
