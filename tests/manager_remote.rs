//! Managers other machines use, over TCP on 127.0.0.1: Python's `BaseManager(address=..,
//! authkey=..)`, `connect()`, and registered objects, with the mutual HMAC challenge.

use multiproc::managers::{DictProxy, ListProxy, Manager, ManagerError, QueueProxy};
use multiproc::prelude::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const KEY: &[u8] = b"correct horse battery staple";

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn tcp_manager() -> Manager {
    Manager::builder()
        .listen(loopback())
        .authkey(KEY)
        .start()
        .unwrap()
}

#[test]
fn a_client_with_the_key_uses_a_published_dict() {
    let manager = tcp_manager();
    let addr = manager.address().unwrap();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0, "the port picked is told");
    let jobs = manager.dict::<String, u32>().unwrap();
    jobs.insert("a".to_string(), 1).unwrap();
    manager.publish("jobs", &jobs).unwrap();

    let client = Manager::connect(addr, KEY).unwrap();
    assert_eq!(client.pid(), manager.pid());
    let remote: DictProxy<String, u32> = client.lookup("jobs").unwrap();
    assert_eq!(remote.get(&"a".to_string()).unwrap(), Some(1));
    remote.insert("b".to_string(), 2).unwrap();
    assert_eq!(jobs.get(&"b".to_string()).unwrap(), Some(2));
    assert_eq!(remote.fetch_add(&"b".to_string(), 40).unwrap(), 2);
    assert_eq!(jobs.get(&"b".to_string()).unwrap(), Some(42));
}

#[test]
fn a_wrong_key_is_refused_and_the_manager_serves_on() {
    let manager = tcp_manager();
    let addr = manager.address().unwrap();
    let list = manager.list::<u8>().unwrap();
    manager.publish("l", &list).unwrap();
    for wrong in [&b"wrong"[..], &KEY[..KEY.len() - 1]] {
        let err = Manager::connect(addr, wrong).unwrap_err();
        assert!(
            matches!(err, ManagerError::Authentication { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("refused the authkey"), "{err}");
    }
    assert!(matches!(
        Manager::connect(addr, [0u8; 33]),
        Err(ManagerError::Authentication { .. })
    ));
    let client = Manager::connect(addr, KEY).unwrap();
    let remote: ListProxy<u8> = client.lookup("l").unwrap();
    remote.push(7).unwrap();
    assert_eq!(list.to_vec().unwrap(), [7]);
}

#[test]
fn garbage_and_silent_peers_do_not_stop_the_manager() {
    let manager = tcp_manager();
    let addr = manager.address().unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut garbage = TcpStream::connect(addr).unwrap();
    garbage.write_all(&u64::MAX.to_le_bytes()).unwrap();
    garbage.write_all(&[0xAB; 300]).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    // The server sends its challenge and its refusal, then hangs up.
    let _ = garbage.read_to_end(&mut rest);
    assert!(!rest.is_empty());

    let d = manager.dict::<u8, u8>().unwrap();
    manager.publish("d", &d).unwrap();
    let client = Manager::connect(addr, KEY).unwrap();
    let remote: DictProxy<u8, u8> = client.lookup("d").unwrap();
    remote.insert(1, 1).unwrap();
    assert_eq!(d.len().unwrap(), 1);
    // A peer that never answers its challenge is dropped after its time (10 s).
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let started = Instant::now();
    let mut challenge = Vec::new();
    silent.read_to_end(&mut challenge).unwrap();
    assert!(!challenge.is_empty());
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn lookup_checks_the_name_and_the_proxy_type() {
    let manager = tcp_manager();
    let d = manager.dict::<String, u32>().unwrap();
    manager.publish("d", &d).unwrap();
    let client = Manager::connect(manager.address().unwrap(), KEY).unwrap();
    assert!(matches!(
        client.lookup::<DictProxy<String, u32>>("missing"),
        Err(ManagerError::NotPublished { name, .. }) if name == "missing"
    ));
    assert!(matches!(
        client.lookup::<DictProxy<String, i64>>("d"),
        Err(ManagerError::NotPublished { asked, .. }) if asked.contains("i64")
    ));
    assert!(matches!(
        client.lookup::<ListProxy<u32>>("d"),
        Err(ManagerError::NotPublished { .. })
    ));
    let other = Manager::start().unwrap();
    let foreign = other.list::<u8>().unwrap();
    assert!(manager.publish("foreign", &foreign).is_err());
    // The owner looks up too, and a client publishes too.
    let q = manager.queue::<u8>().unwrap();
    client.publish("q", &q).unwrap();
    let again: QueueProxy<u8> = manager.lookup("q").unwrap();
    assert_eq!(again, q);
}

#[test]
fn a_restart_on_the_same_address_serves_new_clients() {
    let first = tcp_manager();
    let addr = first.address().unwrap();
    let d = first.dict::<u8, u8>().unwrap();
    first.publish("d", &d).unwrap();
    let client = Manager::connect(addr, KEY).unwrap();
    let old: DictProxy<u8, u8> = client.lookup("d").unwrap();
    old.insert(1, 1).unwrap();
    first.shutdown().unwrap();
    drop(first);

    let second = Manager::builder()
        .listen(addr)
        .authkey(KEY)
        .start()
        .unwrap();
    assert_eq!(second.address(), Some(addr));
    let d = second.dict::<u8, u8>().unwrap();
    second.publish("d", &d).unwrap();
    let client = Manager::connect(addr, KEY).unwrap();
    let new: DictProxy<u8, u8> = client.lookup("d").unwrap();
    assert_eq!(new.len().unwrap(), 0, "a new manager, a new dict");
    let started = Instant::now();
    assert!(old.len().is_err(), "the old proxy names the old manager");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn listening_beyond_loopback_needs_a_key_and_loopback_gets_a_random_one() {
    let everywhere = SocketAddr::from(([0, 0, 0, 0], 0));
    let err = Manager::builder().listen(everywhere).start().unwrap_err();
    assert!(
        matches!(
            err,
            multiproc::Error::Manager(ManagerError::InsecureAddress { addr }) if addr == everywhere
        ),
        "{err:?}"
    );
    let manager = Manager::builder().listen(loopback()).start().unwrap();
    let key = manager.authkey().unwrap();
    assert_eq!(key.len(), 32);
    let client = Manager::connect(manager.address().unwrap(), &key).unwrap();
    assert_eq!(client.pid(), manager.pid());
    assert!(Manager::start().unwrap().address().is_none());
}

#[test]
fn nothing_listening_is_unreachable() {
    let manager = tcp_manager();
    let addr = manager.address().unwrap();
    manager.shutdown().unwrap();
    assert!(matches!(
        Manager::connect(addr, KEY),
        Err(ManagerError::Unreachable { .. })
    ));
}

#[process_task]
fn fill(d: DictProxy<u32, String>, q: QueueProxy<u32>, id: u32) -> multiproc::Result<()> {
    d.insert(id, format!("child {id}"))?;
    q.put(id)?;
    Ok(())
}

#[test]
fn proxies_looked_up_over_tcp_work_in_the_clients_children() {
    let manager = tcp_manager();
    let d = manager.dict::<u32, String>().unwrap();
    let q = manager.queue::<u32>().unwrap();
    manager.publish("d", &d).unwrap();
    manager.publish("q", &q).unwrap();

    let client = Manager::connect(manager.address().unwrap(), KEY).unwrap();
    let rd: DictProxy<u32, String> = client.lookup("d").unwrap();
    let rq: QueueProxy<u32> = client.lookup("q").unwrap();
    let children: Vec<_> = (0..2)
        .map(|id| {
            Process::new(task!(fill, rd.clone(), rq.clone(), id))
                .start()
                .unwrap()
        })
        .collect();
    for child in children {
        child.join().unwrap().unwrap();
    }
    assert_eq!(d.get(&1).unwrap().as_deref(), Some("child 1"));
    let mut got = [q.get().unwrap(), q.get().unwrap()];
    got.sort();
    assert_eq!(got, [0, 1]);
}
