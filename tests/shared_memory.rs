//! `SharedMemory` across real processes: attach, unlink, and cleanup when the creator dies.

mod common;

use multiproc::prelude::*;
use multiproc::shm::{SharedMemory, ShmError};
use multiproc::sync::Event;
use std::path::Path;
use std::time::{Duration, Instant};

fn in_dev_shm(name: &str) -> bool {
    Path::new("/dev/shm").join(name).exists()
}

fn unique(tag: &str) -> String {
    format!("mp_test_{tag}_{}", std::process::id())
}

#[test]
fn a_block_created_by_name_is_attached_by_a_child_and_unlinked_by_its_creator() {
    let name = unique("attach");
    let shm = SharedMemory::create(Some(&name), 100).unwrap();
    assert_eq!((shm.name(), shm.size()), (name.as_str(), 100));
    shm.write_at(0, b"hello").unwrap();
    let child = {
        let name = name.clone();
        Process::fork(move || {
            let other = SharedMemory::attach(&name).unwrap();
            let mut seen = vec![0; 5];
            other.read_at(0, &mut seen).unwrap();
            other.write_at(0, b"j").unwrap();
            other.close();
            seen
        })
        .unwrap()
    };
    assert_eq!(child.join().unwrap(), b"hello");
    assert!(in_dev_shm(&name), "an attacher exiting does not remove it");
    let mut seen = [0; 5];
    shm.read_at(0, &mut seen).unwrap();
    assert_eq!(&seen, b"jello");
    shm.unlink().unwrap();
    assert!(!in_dev_shm(&name));
    assert!(matches!(
        SharedMemory::attach(&name),
        Err(ShmError::NotFound(_))
    ));
}

#[test]
fn a_shared_memory_handle_decoded_in_a_child_attaches_by_name() {
    let shm = SharedMemory::create(None, 8).unwrap();
    assert!(shm.name().starts_with("psm_"));
    shm.write_at(7, &[77]).unwrap();
    let encoded = common::encode(&shm);
    let child = Process::fork(move || {
        let other: SharedMemory = common::decode(&encoded).unwrap();
        let mut last = [0];
        other.read_at(7, &mut last).unwrap();
        (other.size(), last[0])
    })
    .unwrap();
    assert_eq!(child.join().unwrap(), (8, 77));
    shm.unlink().unwrap();
}

#[test]
fn bad_sizes_and_names_are_clear_errors() {
    assert!(matches!(
        SharedMemory::create(None, 0),
        Err(ShmError::BadSize(0))
    ));
    for bad in ["", "/", "a/b", "x\0y", ".."] {
        assert!(
            matches!(
                SharedMemory::create(Some(bad), 8),
                Err(ShmError::BadName(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        SharedMemory::create(Some(&"n".repeat(300)), 8),
        Err(ShmError::BadName(_))
    ));
    let name = unique("exists");
    let shm = SharedMemory::create(Some(&name), 8).unwrap();
    assert!(matches!(
        SharedMemory::create(Some(&name), 8),
        Err(ShmError::Exists(_))
    ));
    shm.unlink().unwrap();
}

#[test]
fn the_name_of_a_killed_creator_is_removed_within_5_seconds() {
    let name = unique("killed");
    let created = Event::new().unwrap();
    let child = {
        let (name, created) = (name.clone(), created.clone());
        Process::fork(move || {
            let shm = SharedMemory::create(Some(&name), 4096).unwrap();
            created.set();
            std::thread::sleep(Duration::from_secs(60));
            drop(shm);
        })
        .unwrap()
    };
    assert!(created.wait_timeout(Duration::from_secs(10)));
    assert!(in_dev_shm(&name));
    child.kill().unwrap();
    let start = Instant::now();
    while in_dev_shm(&name) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!in_dev_shm(&name), "still in /dev/shm after 5 s");
    let _ = child.join();
}

#[test]
fn a_creator_that_exits_without_unlinking_leaves_nothing_behind() {
    let name = unique("exited");
    let child = {
        let name = name.clone();
        Process::fork(move || SharedMemory::create(Some(&name), 64).map(drop).is_ok()).unwrap()
    };
    assert!(child.join().unwrap());
    let start = Instant::now();
    while in_dev_shm(&name) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!in_dev_shm(&name));
}

#[test]
fn byte_ranges_past_the_end_are_refused_and_write_nothing() {
    let shm = SharedMemory::create(None, 8).unwrap();
    assert!(matches!(
        shm.write_at(6, &[1, 2, 3]),
        Err(ShmError::OutOfBounds {
            offset: 6,
            len: 3,
            size: 8
        })
    ));
    assert!(shm.write_at(usize::MAX, &[1]).is_err());
    assert!(shm.read_at(9, &mut []).is_err());
    shm.write_at(8, &[]).unwrap();
    let mut all = [1u8; 8];
    shm.read_at(0, &mut all).unwrap();
    assert_eq!(all, [0; 8], "a refused write changes nothing");
    shm.unlink().unwrap();
}

/// Two threads in each of two processes write whole patterns over the same bytes through
/// handles of their own; every byte ends as one of the patterns' bytes, and the last writes
/// of each, made alone, are read back exactly.
#[test]
fn threads_and_processes_may_write_the_same_bytes_at_once() {
    const LEN: usize = 4096;
    let shm = SharedMemory::create(None, LEN).unwrap();
    let name = shm.name().to_owned();
    let hammer = move |tag: u8| {
        let shm = SharedMemory::attach(&name).unwrap();
        std::thread::scope(|s| {
            for pattern in [tag, tag + 1] {
                let shm = &shm;
                s.spawn(move || {
                    let data = [pattern; LEN];
                    let mut seen = [0u8; LEN];
                    for _ in 0..200 {
                        shm.write_at(0, &data).unwrap();
                        shm.read_at(0, &mut seen).unwrap();
                        assert!(seen.iter().all(|&b| b == 0 || (1..=4).contains(&b)));
                    }
                });
            }
        });
    };
    let child = {
        let hammer = hammer.clone();
        Process::fork(move || hammer(3)).unwrap()
    };
    hammer(1);
    child.join().unwrap();
    let mut all = [0u8; LEN];
    shm.read_at(0, &mut all).unwrap();
    assert!(
        all.iter().all(|&b| (1..=4).contains(&b)),
        "only written bytes"
    );
    shm.write_at(100, &[42; 8]).unwrap();
    shm.read_at(0, &mut all).unwrap();
    assert_eq!(all[100..108], [42; 8]);
    shm.unlink().unwrap();
}
