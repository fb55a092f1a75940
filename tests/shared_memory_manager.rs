//! `SharedMemoryManager` and `ShareableList` across real processes: Python's
//! `multiprocessing.managers.SharedMemoryManager` and `shared_memory.ShareableList`.

use multiproc::managers::{Item, ShareableList, SharedMemoryManager};
use multiproc::prelude::*;
use multiproc::shm::{SharedMemory, ShmError};
use multiproc::Queue;
use std::path::Path;
use std::time::{Duration, Instant};

fn in_dev_shm(name: &str) -> bool {
    Path::new("/dev/shm").join(name).exists()
}

/// Waits up to 10 s for `name` to leave /dev/shm; whether it did.
fn leaves_dev_shm(name: &str) -> bool {
    let start = Instant::now();
    while in_dev_shm(name) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    !in_dev_shm(name)
}

#[test]
fn shutdown_unlinks_every_block_it_made_and_only_those() {
    let smm = SharedMemoryManager::start();
    let a = smm.shared_memory(64).unwrap();
    let list = smm.shareable_list([Item::from(1)]).unwrap();
    let mine = SharedMemory::create(None, 8).unwrap();
    assert_eq!(smm.names(), [a.name(), list.name()]);
    assert!(in_dev_shm(a.name()) && in_dev_shm(list.name()));
    a.write_at(0, b"kept").unwrap();
    smm.shutdown().unwrap();
    assert!(!in_dev_shm(a.name()) && !in_dev_shm(list.name()));
    assert!(matches!(
        SharedMemory::attach(a.name()),
        Err(ShmError::NotFound(_))
    ));
    let mut seen = [0; 4];
    a.read_at(0, &mut seen).unwrap();
    assert_eq!(&seen, b"kept", "an open handle keeps its memory");
    assert!(in_dev_shm(mine.name()), "not the manager's");
    assert!(smm.names().is_empty());
    smm.shutdown().unwrap();
    mine.unlink().unwrap();
}

#[test]
fn dropping_it_unlinks_and_a_block_unlinked_already_is_skipped() {
    let smm = SharedMemoryManager::start();
    let a = smm.shared_memory(16).unwrap();
    let b = smm.shared_memory(16).unwrap();
    a.unlink().unwrap();
    drop(smm);
    assert!(!in_dev_shm(b.name()));
}

#[process_task]
fn make_blocks_and_hang(names: Queue<String>) -> multiproc::Result<()> {
    let smm = SharedMemoryManager::start();
    let block = smm.shared_memory(4096)?;
    let list = smm.shareable_list([Item::from("x")])?;
    names.put(block.name().to_string()).ok();
    names.put(list.name().to_string()).ok();
    std::thread::sleep(Duration::from_secs(60));
    drop(smm);
    Ok(())
}

#[test]
fn the_blocks_of_a_killed_owner_leave_dev_shm() {
    let names = Queue::<String>::new().unwrap();
    let child = Process::new(task!(make_blocks_and_hang, names.clone()))
        .start()
        .unwrap();
    let patience = Duration::from_secs(30);
    let made = [
        names.get_timeout(patience).unwrap(),
        names.get_timeout(patience).unwrap(),
    ];
    assert!(made.iter().all(|name| in_dev_shm(name)));
    child.kill().unwrap();
    for name in &made {
        assert!(leaves_dev_shm(name), "{name} is still in /dev/shm");
    }
    let _ = child.join();
}

#[test]
fn a_shareable_list_holds_each_kind_and_keeps_its_slots() {
    let items = [
        Item::Int(-5),
        Item::Float(2.5),
        Item::Bool(true),
        Item::Str("héllo".to_string()),
        Item::Bytes(vec![0, 1, 2]),
        Item::None,
    ];
    let list = ShareableList::create(None, items.clone()).unwrap();
    assert_eq!(list.len(), 6);
    assert_eq!(list.to_vec().unwrap(), items);
    list.set(0, i64::MAX).unwrap();
    list.set(2, "12345678").unwrap();
    assert_eq!(list.get(0).unwrap(), Item::Int(i64::MAX));
    assert_eq!(list.get(2).unwrap(), Item::Str("12345678".to_string()));
    assert!(matches!(
        list.set(2, "123456789"),
        Err(ShmError::ItemTooLarge {
            index: 2,
            capacity: 8,
            len: 9
        })
    ));
    assert!(matches!(
        list.get(6),
        Err(ShmError::IndexOutOfRange { index: 6, len: 6 })
    ));
    assert!(list.set(6, 1).is_err());
    list.set(5, ()).unwrap();
    assert_eq!(list.get(5).unwrap(), Item::None);
    let empty = ShareableList::create(None, []).unwrap();
    assert!(empty.is_empty());
    assert_eq!(ShareableList::attach(empty.name()).unwrap().len(), 0);
    empty.shm().unlink().unwrap();
    list.shm().unlink().unwrap();
}

#[process_task]
fn double_all(list: ShareableList) -> multiproc::Result<()> {
    for index in 0..list.len() {
        if let Item::Int(n) = list.get(index)? {
            list.set(index, n * 2)?;
        }
    }
    list.set(list.len() - 1, "done")?;
    Ok(())
}

#[test]
fn a_child_attaches_a_list_passed_to_it_and_its_writes_are_seen() {
    let smm = SharedMemoryManager::start();
    let list = smm
        .shareable_list([1.into(), 2.into(), 3.into(), "busy".into()])
        .unwrap();
    Process::new(task!(
        double_all,
        ShareableList::attach(list.name()).unwrap()
    ))
    .start()
    .unwrap()
    .join()
    .unwrap()
    .unwrap();
    assert_eq!(
        list.to_vec().unwrap(),
        [2.into(), 4.into(), 6.into(), Item::from("done")]
    );
}

#[test]
fn a_block_that_is_no_list_is_refused() {
    let smm = SharedMemoryManager::start();
    let block = smm.shared_memory(4).unwrap();
    assert!(matches!(
        ShareableList::attach(block.name()),
        Err(ShmError::NotAShareableList { .. })
    ));
    let block = smm.shared_memory(4096).unwrap();
    block.write_at(0, &[0xAB; 4096]).unwrap();
    assert!(matches!(
        ShareableList::attach(block.name()),
        Err(ShmError::NotAShareableList { .. })
    ));
}
