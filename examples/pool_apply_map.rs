#[path = "patterns/pool_apply_map.rs"]
mod pattern;

fn main() -> multiproc::Result<()> {
    pattern::run()
}
