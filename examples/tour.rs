//! The tour: every tutorial pattern, one after another, briefly.
//!
//! `cargo run --release --example tour`

#[path = "patterns/barrier.rs"]
mod barrier;
#[path = "patterns/condition_producer.rs"]
mod condition_producer;
#[path = "patterns/joinable_workers.rs"]
mod joinable_workers;
#[path = "patterns/lock_print.rs"]
mod lock_print;
#[path = "patterns/pipe_echo.rs"]
mod pipe_echo;
#[path = "patterns/queue_producer_consumer.rs"]
mod queue_producer_consumer;
#[path = "patterns/rlock_twice.rs"]
mod rlock_twice;
#[path = "patterns/shared_value.rs"]
mod shared_value;
#[path = "patterns/wait_children.rs"]
mod wait_children;

fn main() -> multiproc::Result<()> {
    lock_print::run()?;
    rlock_twice::run()?;
    shared_value::run()?;
    condition_producer::run()?;
    barrier::run()?;
    queue_producer_consumer::run()?;
    joinable_workers::run()?;
    pipe_echo::run()?;
    wait_children::run()?;
    Ok(())
}
