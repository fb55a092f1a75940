use multiproc::prelude::*;

#[process_task]
fn shout(text: &str) -> String {
    text.to_uppercase()
}

fn main() {}
