//! Tasks defined in a library crate. A spawned or forkserver child runs them by name in the
//! binary that depends on this crate, as it runs the binary's own tasks: the registration that
//! `#[process_task]` emits here is linked into that binary.

use multiproc::prelude::*;

/// The words joined with a separator, so that a test sees its arguments arrive in order.
#[process_task]
pub fn join_words(words: Vec<String>, separator: char) -> String {
    let mut joined = String::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            joined.push(separator);
        }
        joined.push_str(word);
    }
    joined
}

/// Adds `by` to a shared counter and returns the process that did it.
#[process_task]
pub fn bump(counter: Value<i64>, by: i64) -> u32 {
    counter.fetch_add(by);
    std::process::id()
}
