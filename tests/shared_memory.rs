//! Shared memory across real processes: blocks, segments, and `SharedMemory`.

use multiproc::prelude::*;
use multiproc::shm::Block;
use multiproc::sync::futex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[test]
fn a_forked_child_writes_a_block_the_parent_reads() {
    let block = Block::new(64, 8).unwrap();
    let child = {
        let block = block.clone();
        Process::spawn(move || block.atomic_u64(0).unwrap().store(4242, Ordering::SeqCst)).unwrap()
    };
    child.join().unwrap();
    assert_eq!(block.atomic_u64(0).unwrap().load(Ordering::SeqCst), 4242);
}

#[test]
fn a_block_decoded_in_a_child_is_the_parents_memory() {
    let block = Block::new(64, 8).unwrap();
    let encoded = multiproc::wire::encode(&block).unwrap();
    let child = Process::spawn(move || {
        let block: Block = multiproc::wire::decode(&encoded).unwrap();
        block.atomic_u64(8).unwrap().fetch_add(5, Ordering::SeqCst);
    })
    .unwrap();
    child.join().unwrap();
    assert_eq!(block.atomic_u64(8).unwrap().load(Ordering::SeqCst), 5);
}

#[test]
fn a_child_wakes_the_parent_sleeping_on_a_shared_futex() {
    let block = Block::new(4, 4).unwrap();
    let child = {
        let block = block.clone();
        Process::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let word = block.atomic_u32(0).unwrap();
            word.store(1, Ordering::Release);
            futex::wake_all(word);
        })
        .unwrap()
    };
    let word = block.atomic_u32(0).unwrap();
    let start = Instant::now();
    while word.load(Ordering::Acquire) == 0 {
        futex::wait(word, 0, Some(start + Duration::from_secs(10)));
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    child.join().unwrap();
}
