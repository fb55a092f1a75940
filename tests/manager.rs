//! Managers: Python's manager behaviours in Rust form. Dict, list and namespace proxies, nesting,
//! proxies in Process and Pool tasks, atomic updates from many processes, and the lifecycle.

use multiproc::managers::{
    DictProxy, ListProxy, Manager, ManagerError, NamespaceProxy, ServerError,
};
use multiproc::prelude::*;
use multiproc::{get_context, StartMethod};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

mod common;

fn s(text: &str) -> String {
    text.to_string()
}

#[test]
fn a_dict_proxy_behaves_like_pythons_dict() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    assert!(d.is_empty().unwrap());
    assert_eq!(d.insert(s("b"), 2).unwrap(), None);
    assert_eq!(d.insert(s("a"), 1).unwrap(), None);
    assert_eq!(d.insert(s("b"), 20).unwrap(), Some(2), "replaced in place");
    assert_eq!(d.get(&s("b")).unwrap(), Some(20));
    assert_eq!(d.get(&s("zz")).unwrap(), None);
    assert!(d.contains_key(&s("a")).unwrap());
    assert!(!d.contains_key(&s("zz")).unwrap());
    d.update([(s("c"), 3), (s("d"), 4)]).unwrap();
    assert_eq!(d.len().unwrap(), 4);
    assert_eq!(d.keys().unwrap(), ["b", "a", "c", "d"], "insertion order");
    assert_eq!(d.values().unwrap(), [20, 1, 3, 4]);
    assert_eq!(d.remove(&s("a")).unwrap(), Some(1));
    assert_eq!(d.remove(&s("a")).unwrap(), None);
    assert_eq!(
        d.pop().unwrap(),
        Some((s("d"), 4)),
        "popitem takes the last"
    );
    assert_eq!(d.setdefault(s("c"), 99).unwrap(), 3, "present: kept");
    assert_eq!(d.setdefault(s("e"), 5).unwrap(), 5, "absent: set");
    assert_eq!(d.items().unwrap(), [(s("b"), 20), (s("c"), 3), (s("e"), 5)]);
    let copy: HashMap<String, i64> = d.to_hash_map().unwrap();
    assert_eq!(
        copy,
        HashMap::from([(s("b"), 20), (s("c"), 3), (s("e"), 5)])
    );
    d.clear().unwrap();
    assert_eq!(d.len().unwrap(), 0);
    assert_eq!(d.pop().unwrap(), None);
}

#[test]
fn a_list_proxy_behaves_like_pythons_list() {
    let manager = Manager::start().unwrap();
    let l = manager.list::<String>().unwrap();
    l.push(s("a")).unwrap();
    l.extend([s("b"), s("c")]).unwrap();
    l.insert(0, s("first")).unwrap();
    l.insert(4, s("end")).unwrap();
    assert_eq!(l.to_vec().unwrap(), ["first", "a", "b", "c", "end"]);
    assert_eq!(l.get(1).unwrap(), Some(s("a")));
    assert_eq!(l.get(5).unwrap(), None);
    assert_eq!(l.set(1, s("A")).unwrap(), "a");
    assert_eq!(l.remove(0).unwrap(), "first");
    assert_eq!(l.pop().unwrap(), Some(s("end")));
    assert_eq!(l.len().unwrap(), 3);
    let err = l.set(3, s("x")).unwrap_err();
    assert!(matches!(
        err,
        ManagerError::Server(ServerError::IndexOutOfRange { index: 3, len: 3 })
    ));
    assert!(l.insert(9, s("x")).is_err());
    assert!(l.remove(3).is_err());
    assert_eq!(
        l.to_vec().unwrap(),
        ["A", "b", "c"],
        "errors changed nothing"
    );
    l.clear().unwrap();
    assert!(l.is_empty().unwrap());
    assert_eq!(l.pop().unwrap(), None);
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    round: u32,
    label: String,
}

#[process_task]
fn bump_round(ns: NamespaceProxy<Settings>, times: u32) -> multiproc::Result<()> {
    for _ in 0..times {
        ns.update_with(|s| s.round += 1)?;
    }
    Ok(())
}

#[test]
fn a_namespace_is_shared_and_updated_atomically() {
    let manager = Manager::start().unwrap();
    let ns = manager.namespace(Settings::default()).unwrap();
    ns.set(&Settings {
        round: 0,
        label: s("go"),
    })
    .unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Process::new(task!(bump_round, ns.clone(), 50))
                .start()
                .unwrap()
        })
        .collect();
    for child in children {
        child.join().unwrap().unwrap();
    }
    assert_eq!(
        ns.get().unwrap(),
        Settings {
            round: 150,
            label: s("go")
        }
    );
}

#[process_task]
fn push_through_stored_list(
    d: DictProxy<String, ListProxy<i64>>,
    value: i64,
) -> multiproc::Result<()> {
    let inner = d.get(&"k".to_string())?.expect("the list is stored");
    inner.push(value)?;
    Ok(())
}

#[test]
fn a_list_stored_in_a_dict_is_updated_in_place_from_other_processes() {
    let manager = Manager::start().unwrap();
    let d: DictProxy<String, ListProxy<i64>> = manager.dict().unwrap();
    d.insert(s("k"), manager.list().unwrap()).unwrap();
    // Python's trap, `d["k"].append(x)` lost on a copy, cannot happen: the stored value is the
    // proxy, whoever holds the local one.
    let children: Vec<_> = (0..4)
        .map(|i| {
            Process::new(task!(push_through_stored_list, d.clone(), i))
                .start()
                .unwrap()
        })
        .collect();
    for child in children {
        child.join().unwrap().unwrap();
    }
    let mut seen = d.get(&s("k")).unwrap().unwrap().to_vec().unwrap();
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3]);
}

#[process_task]
fn fill(id: u32, d: DictProxy<u32, String>, l: ListProxy<u32>) -> multiproc::Result<()> {
    d.insert(id, format!("worker {id}"))?;
    l.push(id * 10)?;
    Ok(())
}

#[test]
fn several_processes_fill_one_dict_and_one_list() {
    let manager = Manager::start().unwrap();
    let d = manager.dict().unwrap();
    let l = manager.list().unwrap();
    let children: Vec<_> = (0..5)
        .map(|id| {
            Process::new(task!(fill, id, d.clone(), l.clone()))
                .start()
                .unwrap()
        })
        .collect();
    for child in children {
        child.join().unwrap().unwrap();
    }
    let mut keys = d.keys().unwrap();
    keys.sort();
    assert_eq!(keys, [0, 1, 2, 3, 4]);
    assert_eq!(d.get(&3).unwrap(), Some(s("worker 3")));
    let mut values = l.to_vec().unwrap();
    values.sort();
    assert_eq!(values, [0, 10, 20, 30, 40]);
}

#[process_task]
fn square_into(d: DictProxy<u64, u64>, x: u64) -> multiproc::Result<u64> {
    d.insert(x, x * x)?;
    Ok(x)
}

#[test]
fn proxies_work_in_pool_tasks() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u64, u64>().unwrap();
    let pool = Pool::new(2).unwrap();
    let done = pool.map(task!(square_into, d.clone()), 0..20).unwrap();
    assert_eq!(done.len(), 20);
    for x in 0..20u64 {
        assert_eq!(d.get(&x).unwrap(), Some(x * x));
    }
}

#[process_task]
fn count_up(d: DictProxy<String, u64>, n: u32) -> multiproc::Result<()> {
    for _ in 0..n {
        d.fetch_add(&"hits".to_string(), 1)?;
    }
    Ok(())
}

#[test]
fn eight_processes_fetch_add_ten_thousand_times_each_exactly() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, u64>().unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            Process::new(task!(count_up, d.clone(), 10_000))
                .start()
                .unwrap()
        })
        .collect();
    for child in children {
        child.join().unwrap().unwrap();
    }
    assert_eq!(d.get(&s("hits")).unwrap(), Some(80_000));
}

#[process_task]
fn append_each(d: DictProxy<String, Vec<u32>>, from: u32, n: u32) -> multiproc::Result<()> {
    for i in from..from + n {
        d.update_with(&"all".to_string(), |v| {
            let mut v = v.unwrap_or_default();
            v.push(i);
            Some(v)
        })?;
    }
    Ok(())
}

#[test]
fn versioned_updates_from_four_processes_land_exactly_once_each() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, Vec<u32>>().unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            Process::new(task!(append_each, d.clone(), i * 100, 50))
                .start()
                .unwrap()
        })
        .collect();
    for child in children {
        child.join().unwrap().unwrap();
    }
    let mut all = d.get(&s("all")).unwrap().unwrap();
    all.sort();
    let expected: Vec<u32> = (0..4).flat_map(|i| i * 100..i * 100 + 50).collect();
    assert_eq!(all, expected);
}

#[test]
fn fetch_add_works_on_each_number_type_and_refuses_other_values() {
    let manager = Manager::start().unwrap();
    let floats = manager.dict::<u8, f64>().unwrap();
    assert_eq!(floats.fetch_add(&1, 0.5).unwrap(), 0.0);
    assert_eq!(floats.fetch_sub(&1, 2.0).unwrap(), 0.5);
    assert_eq!(floats.get(&1).unwrap(), Some(-1.5));
    let small = manager.dict::<u8, u8>().unwrap();
    small.insert(0, 250).unwrap();
    assert_eq!(small.fetch_add(&0, 10).unwrap(), 250);
    assert_eq!(small.get(&0).unwrap(), Some(4), "wraps, as atomics do");
    // The same dict seen with another value type: the stored text is not a number.
    let words = manager.dict::<u8, String>().unwrap();
    words.insert(0, s("not a number at all")).unwrap();
    let as_numbers: DictProxy<u8, f64> = common::decode(&common::encode(&words)).unwrap();
    assert!(matches!(
        as_numbers.fetch_add(&0, 1.0),
        Err(ManagerError::Server(ServerError::NotANumber { .. }))
    ));
    assert_eq!(words.get(&0).unwrap(), Some(s("not a number at all")));
}

#[test]
fn a_manager_starts_under_each_method_and_serves_each_methods_children() {
    for method in [
        StartMethod::Fork,
        StartMethod::Spawn,
        StartMethod::Forkserver,
    ] {
        let ctx = get_context(method).unwrap();
        let manager = ctx.manager().unwrap();
        let d = manager.dict::<u32, String>().unwrap();
        let l = manager.list::<u32>().unwrap();
        let child = ctx
            .process(task!(fill, 7, d.clone(), l.clone()))
            .start()
            .unwrap();
        child.join().unwrap().unwrap();
        assert_eq!(d.get(&7).unwrap(), Some(s("worker 7")), "{method}");
        assert_eq!(l.to_vec().unwrap(), [70], "{method}");
        manager.shutdown().unwrap();
    }
}

#[test]
fn a_forked_child_uses_its_own_connection_beside_its_parent() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    d.insert(0, 0).unwrap(); // this thread's connection exists before the fork
    let child = {
        let d = d.clone();
        get_context(StartMethod::Fork)
            .unwrap()
            .from_fn(move || {
                (0..2000u32)
                    .map(|i| d.insert(1, i).map(|_| ()))
                    .collect::<Result<Vec<()>, _>>()
                    .is_ok()
            })
            .start()
            .unwrap()
    };
    for i in 0..2000 {
        // Each answer is this process's own: the previous value it wrote (0 before the first).
        assert_eq!(d.insert(0, i).unwrap(), Some(i.saturating_sub(1)));
    }
    assert!(child.join().unwrap(), "the child's calls all succeeded");
    assert_eq!(d.get(&1).unwrap(), Some(1999));
}

/// The names in `/dev/shm`.
fn dev_shm() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn shutdown_is_idempotent_and_use_after_shutdown_is_an_error() {
    let shm_before = dev_shm();
    let manager = Manager::start().unwrap();
    let pid = manager.pid();
    let d = manager.dict::<u32, u32>().unwrap();
    d.insert(1, 1).unwrap();
    manager.shutdown().unwrap();
    manager.shutdown().unwrap();
    assert!(matches!(d.get(&1), Err(ManagerError::ShutDown)));
    assert!(matches!(manager.list::<u8>(), Err(ManagerError::ShutDown)));
    assert!(common::is_reaped(pid), "the server was reaped");
    let sockets = std::fs::read_to_string("/proc/net/unix").unwrap();
    assert!(
        !sockets.contains(&format!("multiproc-manager-{pid}-")),
        "no socket is left"
    );
    let left: Vec<_> = dev_shm().difference(&shm_before).cloned().collect();
    assert!(left.is_empty(), "nothing left in /dev/shm: {left:?}");
}

#[test]
fn dropping_the_manager_shuts_the_server_down() {
    let manager = Manager::start().unwrap();
    let pid = manager.pid();
    let d = manager.dict::<u32, u32>().unwrap();
    drop(manager);
    assert!(common::is_reaped(pid));
    assert!(matches!(d.len(), Err(ManagerError::ShutDown)));
}

#[test]
fn a_shut_down_manager_is_gone_for_other_processes() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, u64>().unwrap();
    let (ready, go) = (Event::new().unwrap(), Event::new().unwrap());
    let child = {
        let (d, ready, go) = (d.clone(), ready.clone(), go.clone());
        get_context(StartMethod::Fork)
            .unwrap()
            .from_fn(move || {
                let before = d.len().is_ok();
                ready.set();
                go.wait();
                (before, matches!(d.len(), Err(ManagerError::Gone { .. })))
            })
            .start()
            .unwrap()
    };
    assert!(ready.wait_timeout(Duration::from_secs(20)));
    manager.shutdown().unwrap();
    go.set();
    assert_eq!(child.join().unwrap(), (true, true));
}
