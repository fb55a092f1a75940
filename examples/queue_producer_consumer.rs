#[path = "patterns/queue_producer_consumer.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
