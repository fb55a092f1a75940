//! What small shared objects cost once most of them are dropped: the space of dropped ones is
//! given back and used again. One test in this file, on purpose: a fork anywhere in the process
//! while the objects live (another test's child) would keep their space from being given back.

use multiproc::Value;
use std::os::unix::fs::MetadataExt;

/// The arenas this process has open: (how many, bytes of memory they hold).
fn arenas() -> (usize, u64) {
    let mut count = 0;
    let mut held = 0;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("/memfd:multiproc (") {
            continue;
        }
        if let Ok(meta) = std::fs::metadata(entry.path()) {
            count += 1;
            held += meta.blocks() * 512;
        }
    }
    (count, held)
}

const VALUES: u64 = 500_000;
const KEEP_EVERY: u64 = 10_000;
const MIB: u64 = 1 << 20;

#[test]
fn dropped_values_give_their_memory_back_and_new_ones_use_their_space() {
    let (_, at_start) = arenas();
    let all: Vec<Value<u64>> = (0..VALUES).map(|i| Value::new(i).unwrap()).collect();
    let (_, full) = arenas();
    assert!(
        full - at_start >= VALUES * 64,
        "each value takes a cache line: {full} bytes held"
    );

    let kept: Vec<Value<u64>> = all.into_iter().step_by(KEEP_EVERY as usize).collect();
    let (arenas_kept, held) = arenas();
    assert!(
        held - at_start.min(held) < 4 * MIB,
        "{} values kept of {VALUES} still hold {held} bytes",
        kept.len()
    );
    for (i, value) in kept.iter().enumerate() {
        assert_eq!(
            value.get(),
            i as u64 * KEEP_EVERY,
            "the kept values are intact"
        );
    }

    let again: Vec<Value<u64>> = (0..VALUES - kept.len() as u64)
        .map(|i| Value::new(i).unwrap())
        .collect();
    let (arenas_again, _) = arenas();
    assert!(
        arenas_again <= arenas_kept + 1,
        "new values use the space given back: {arenas_kept} arenas before, {arenas_again} after"
    );
    assert!(again.iter().enumerate().all(|(i, v)| v.get() == i as u64));
    for (i, value) in kept.iter().enumerate() {
        assert_eq!(
            value.get(),
            i as u64 * KEEP_EVERY,
            "no new value took a kept one's place"
        );
    }
}
