//! Managers under failure: the server killed, a client dying mid-request, malformed requests,
//! forged proxies, and the owner killed.

use multiproc::managers::{DictProxy, ListProxy, Manager, ManagerError, ServerError};
use multiproc::prelude::*;
use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::{Duration, Instant};

mod common;

/// A raw connection to the manager that `proxy` belongs to, found from the proxy's serde form
/// (the server's pid and its socket's random token).
fn raw_connection<P: serde::Serialize>(proxy: &P) -> UnixStream {
    let handle: serde_json::Value = serde_json::to_value(proxy).unwrap();
    let pid = handle["manager"]["pid"].as_i64().unwrap();
    let token = &handle["manager"]["token"];
    let (a, b) = (token[0].as_u64().unwrap(), token[1].as_u64().unwrap());
    let name = format!("multiproc-manager-{pid}-{a:016x}{b:016x}");
    let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let stream = UnixStream::connect_addr(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

/// Reads one reply frame: the server's refusal, which it must be here.
fn refusal(stream: &mut UnixStream) -> ServerError {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).unwrap();
    let mut payload = vec![0u8; u64::from_le_bytes(header) as usize];
    stream.read_exact(&mut payload).unwrap();
    let reply: Result<Vec<u8>, ServerError> = postcard::from_bytes(&payload).unwrap();
    reply.unwrap_err()
}

/// The same object seen through a proxy of another type, as a forger would make it.
fn retyped<P: serde::Serialize, Q: serde::de::DeserializeOwned>(proxy: &P) -> Q {
    common::decode(&common::encode(proxy)).unwrap()
}

#[test]
fn malformed_requests_get_an_error_and_the_server_serves_on() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u8, String>().unwrap();
    d.insert(1, "one".to_string()).unwrap();
    let mut raw = raw_connection(&d);

    raw.write_all(&frame(&[0xff; 12])).unwrap();
    assert!(matches!(refusal(&mut raw), ServerError::Malformed { .. }));
    raw.write_all(&frame(&[])).unwrap();
    assert!(matches!(refusal(&mut raw), ServerError::Malformed { .. }));
    assert_eq!(
        d.get(&1).unwrap().as_deref(),
        Some("one"),
        "others unaffected"
    );

    // A header announcing more than the server takes: refused, then that connection closed.
    raw.write_all(&u64::MAX.to_le_bytes()).unwrap();
    assert!(matches!(
        refusal(&mut raw),
        ServerError::TooLarge { len: u64::MAX, .. }
    ));
    let mut rest = Vec::new();
    assert_eq!(raw.read_to_end(&mut rest).unwrap(), 0, "closed after");

    // Forged proxies: an object of another kind, a value of another type, no such object.
    let as_list: ListProxy<u8> = retyped(&d);
    let err = as_list.push(1).unwrap_err();
    assert!(
        matches!(err, ManagerError::Server(ServerError::WrongKind { .. })),
        "{err}"
    );
    let as_numbers: DictProxy<u8, u64> = retyped(&d);
    assert!(matches!(as_numbers.get(&1), Err(ManagerError::Codec(_))));
    let mut handle = serde_json::to_value(&d).unwrap();
    handle["obj"] = serde_json::json!(999_999);
    let nowhere: DictProxy<u8, String> = serde_json::from_value(handle).unwrap();
    assert!(matches!(
        nowhere.len(),
        Err(ManagerError::Server(ServerError::NoSuchObject {
            obj: 999_999
        }))
    ));
    assert_eq!(d.len().unwrap(), 1, "the server still serves");
}

#[test]
fn a_client_dying_mid_request_only_drops_its_connection() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    for _ in 0..3 {
        let mut raw = raw_connection(&d);
        // Half a frame: the header announces 100 bytes, 10 come, then the client is gone.
        let mut half = 100u64.to_le_bytes().to_vec();
        half.extend_from_slice(&[0; 10]);
        raw.write_all(&half).unwrap();
        drop(raw);
        d.insert(1, 1).unwrap();
    }
    let child = Process::fork({
        let d = d.clone();
        move || {
            let mut raw = raw_connection(&d);
            raw.write_all(&100u64.to_le_bytes()).unwrap();
            // SAFETY: raise has no preconditions; this child ends here.
            unsafe { libc::raise(libc::SIGKILL) };
        }
    })
    .unwrap();
    assert!(child.join().is_err(), "the child was killed");
    assert_eq!(d.fetch_add(&2, 5).unwrap(), 0);
    assert_eq!(d.get(&2).unwrap(), Some(5));
}

#[process_task]
fn insert_until_gone(d: DictProxy<u32, u32>, started: Event) -> (bool, bool) {
    started.set();
    let mut i = 0;
    let err = loop {
        if let Err(e) = d.insert(i % 16, i) {
            break e;
        }
        i += 1;
    };
    let first_gone = matches!(err, ManagerError::Gone { .. });
    // Every later call fails at once, with no round trip.
    let at_once = Instant::now();
    let again_gone = matches!(d.len(), Err(ManagerError::Gone { .. }))
        && matches!(d.get(&0), Err(ManagerError::Gone { .. }));
    (
        first_gone,
        again_gone && at_once.elapsed() < Duration::from_millis(50),
    )
}

#[test]
fn a_killed_manager_is_gone_for_every_process_within_a_second() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            let started = Event::new().unwrap();
            let child = Process::new(task!(insert_until_gone, d.clone(), started.clone()))
                .start()
                .unwrap();
            assert!(started.wait_timeout(Duration::from_secs(20)));
            child
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: kill has no memory preconditions; the pid is the manager's server.
    assert_eq!(unsafe { libc::kill(manager.pid(), libc::SIGKILL) }, 0);
    let killed = Instant::now();
    for child in children {
        let left = Duration::from_secs(1).saturating_sub(killed.elapsed());
        let outcome = child.join_timeout(left).unwrap();
        assert_eq!(outcome, Some((true, true)), "Gone, at once after the first");
    }
    assert!(matches!(d.len(), Err(ManagerError::Gone { .. })));
    assert!(matches!(
        manager.dict::<u8, u8>(),
        Err(ManagerError::Gone { .. })
    ));
    manager.shutdown().unwrap();
}

#[process_task]
fn own_a_manager(pids: Queue<i32>) {
    let manager = Manager::start().expect("start a manager");
    pids.put(manager.pid()).expect("put");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn the_server_dies_with_its_owner() {
    let pids = Queue::new().unwrap();
    let owner = Process::new(task!(own_a_manager, pids.clone()))
        .start()
        .unwrap();
    let server = pids.get_timeout(Duration::from_secs(20)).unwrap();
    owner.kill().unwrap();
    let _ = owner.join();
    assert!(common::eventually(Duration::from_secs(2), || {
        common::is_gone_or_zombie(server)
    }));
    let sockets = std::fs::read_to_string("/proc/net/unix").unwrap();
    assert!(!sockets.contains(&format!("multiproc-manager-{server}-")));
}
