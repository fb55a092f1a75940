//! The tour: every tutorial pattern, one after another, briefly.
//!
//! `cargo run --release --example tour`

#[path = "patterns/barrier.rs"]
mod barrier;
#[path = "patterns/condition_producer.rs"]
mod condition_producer;
#[path = "patterns/lock_print.rs"]
mod lock_print;
#[path = "patterns/rlock_twice.rs"]
mod rlock_twice;
#[path = "patterns/shared_value.rs"]
mod shared_value;

fn main() -> multiproc::Result<()> {
    lock_print::run()?;
    rlock_twice::run()?;
    shared_value::run()?;
    condition_producer::run()?;
    barrier::run()?;
    Ok(())
}
