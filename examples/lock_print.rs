#[path = "patterns/lock_print.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
