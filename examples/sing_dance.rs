#[path = "patterns/sing_dance.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
