use multiproc::prelude::*;

#[process_task]
async fn fetch(url: String) -> String {
    url
}

fn main() {}
