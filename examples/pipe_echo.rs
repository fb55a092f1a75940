#[path = "patterns/pipe_echo.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
