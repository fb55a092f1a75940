//! `SharedMemory` across real processes: attach, unlink, and cleanup when the creator dies.

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
    let mut shm = SharedMemory::create(Some(&name), 100).unwrap();
    assert_eq!((shm.name(), shm.size()), (name.as_str(), 100));
    shm.buf_mut()[..5].copy_from_slice(b"hello");
    let child = {
        let name = name.clone();
        Process::spawn(move || {
            let mut other = SharedMemory::attach(&name).unwrap();
            let seen = other.buf()[..5].to_vec();
            other.buf_mut()[0] = b'j';
            other.close();
            seen
        })
        .unwrap()
    };
    assert_eq!(child.join().unwrap(), b"hello");
    assert!(in_dev_shm(&name), "an attacher exiting does not remove it");
    assert_eq!(&shm.buf()[..5], b"jello");
    shm.unlink().unwrap();
    assert!(!in_dev_shm(&name));
    assert!(matches!(
        SharedMemory::attach(&name),
        Err(ShmError::NotFound(_))
    ));
}

#[test]
fn a_shared_memory_handle_decoded_in_a_child_attaches_by_name() {
    let mut shm = SharedMemory::create(None, 8).unwrap();
    assert!(shm.name().starts_with("psm_"));
    shm.buf_mut()[7] = 77;
    let encoded = multiproc::wire::encode(&shm).unwrap();
    let child = Process::spawn(move || {
        let other: SharedMemory = multiproc::wire::decode(&encoded).unwrap();
        (other.size(), other.buf()[7])
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
        Process::spawn(move || {
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
        Process::spawn(move || SharedMemory::create(Some(&name), 64).map(drop).is_ok()).unwrap()
    };
    assert!(child.join().unwrap());
    let start = Instant::now();
    while in_dev_shm(&name) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!in_dev_shm(&name));
}
