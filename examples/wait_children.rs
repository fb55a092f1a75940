#[path = "patterns/wait_children.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
