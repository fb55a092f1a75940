#[path = "patterns/shared_value.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
