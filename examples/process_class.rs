#[path = "patterns/process_class.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
