#[path = "patterns/joinable_workers.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
