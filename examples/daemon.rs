#[path = "patterns/daemon.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
