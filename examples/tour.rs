//! The tour: every tutorial pattern, one after another, briefly.
//!
//! `cargo run --release --example tour`

fn main() -> multiproc::Result<()> {
    Ok(())
}
