#[path = "patterns/args_kwargs.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
