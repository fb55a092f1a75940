#[path = "patterns/condition_producer.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
