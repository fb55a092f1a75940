#[path = "patterns/globals.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
