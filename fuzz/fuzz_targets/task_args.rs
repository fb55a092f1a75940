//! Task-argument decoding: a pool worker decodes the arguments a parent sent, one call at a
//! time (`invoke`) or a chunk of calls packed one after another (`invoke_batch`). Whatever the
//! bytes, decoding must end, without a crash, in the task's result or a failure.

#![no_main]

use libfuzzer_sys::fuzz_target;
use multiproc::__private::TaskEntry;
use multiproc::process_task;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// A recursive type, for the depth limit.
#[derive(Serialize, Deserialize)]
enum Tree {
    Leaf(i64),
    Node(Vec<Tree>),
    Labelled { label: String, child: Box<Tree> },
}

/// Arguments of most of serde's data model, zero-sized elements included.
#[process_task]
fn consume(
    words: Vec<String>,
    pair: Option<(u8, i64, char)>,
    map: BTreeMap<u16, Vec<()>>,
    set: HashSet<()>,
    floats: (f32, f64, u128, i128),
    tree: Tree,
) -> usize {
    words.len()
        + pair.map_or(0, |p| p.0.into())
        + map.len()
        + set.len()
        + floats.2 as usize % 7
        + matches!(tree, Tree::Leaf(_)) as usize
}

fuzz_target!(|data: &[u8]| {
    let entry = TaskEntry::of::<consume>();
    let _ = entry.invoke(data);
    let mut args = data;
    let mut out = Vec::new();
    let _ = entry.invoke_batch(&mut args, 4, 1 << 16, &mut out);
});
