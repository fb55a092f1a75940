//! Pipes across real processes: typed and raw messages, boundaries, large messages, EOF, wrong
//! ends, short buffers, poll timeouts, `wait`, and ends passed to children.

mod common;

use multiproc::prelude::*;
use multiproc::{ConnectionError, Waitable};
use std::time::{Duration, Instant};

#[path = "support/unencodable.rs"]
mod unencodable;
use unencodable::Item;

/// Doubles numbers until `None`. (Not until EOF: a forked child also holds the parent's end,
/// as in Python, so the parent dropping its end does not close the pipe.)
#[process_task]
fn echo_doubled(mut conn: Connection<Option<i64>>) -> u32 {
    let mut seen = 0;
    while let Ok(Some(x)) = conn.recv() {
        conn.send(&Some(x * 2)).expect("send");
        seen += 1;
    }
    seen
}

#[test]
fn duplex_echo_across_processes() -> multiproc::Result<()> {
    let (mut ours, theirs) = Pipe::<Option<i64>>::duplex()?;
    let child = Process::new(task!(echo_doubled, theirs)).start()?;
    for x in [-3i64, 0, 21, i64::MAX / 2] {
        ours.send(&Some(x))?;
        assert_eq!(ours.recv()?, Some(x * 2));
    }
    ours.send(&None)?;
    assert_eq!(child.join()?, 4);
    Ok(())
}

#[process_task]
fn send_raw(mut conn: Connection<()>, messages: Vec<Vec<u8>>) {
    for m in &messages {
        conn.send_bytes(m).expect("send_bytes");
    }
}

#[test]
fn boundaries_are_kept_and_empty_messages_count() -> multiproc::Result<()> {
    let (mut reader, writer) = Pipe::<()>::simplex()?;
    let messages: Vec<Vec<u8>> = vec![
        b"a".to_vec(),
        vec![],
        vec![7; 100_000],
        vec![],
        b"xyz".to_vec(),
    ];
    let child = Process::new(task!(send_raw, writer, messages.clone())).start()?;
    for expected in &messages {
        assert_eq!(&reader.recv_bytes()?, expected);
    }
    child.join()?;
    assert!(matches!(reader.recv_bytes(), Err(ConnectionError::Eof)));
    assert!(matches!(reader.recv_bytes(), Err(ConnectionError::Eof)));
    Ok(())
}

#[process_task]
fn send_big(mut conn: Connection<()>, len: u64) {
    let message: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    conn.send_bytes(&message).expect("send_bytes");
}

#[test]
fn messages_of_16_mib_and_more_cross_whole() -> multiproc::Result<()> {
    let len = 17 * 1024 * 1024 + 3;
    let (mut reader, writer) = Pipe::<()>::simplex()?;
    let child = Process::new(task!(send_big, writer, len)).start()?;
    let got = reader.recv_bytes()?;
    child.join()?;
    assert_eq!(got.len() as u64, len);
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    Ok(())
}

#[test]
fn short_buffer_error_carries_the_whole_message() -> multiproc::Result<()> {
    let (mut a, mut b) = Pipe::<()>::duplex()?;
    let message: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    a.send_bytes(b"fits")?;
    a.send_bytes(&message[..1000])?;
    let mut buf = [0u8; 16];
    assert_eq!(b.recv_bytes_into(&mut buf)?, 4);
    assert_eq!(&buf[..4], b"fits");
    match b.recv_bytes_into(&mut buf) {
        Err(ConnectionError::BufferTooShort {
            message: m,
            capacity,
        }) => {
            assert_eq!(m, &message[..1000]);
            assert_eq!(capacity, 16);
        }
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    // The connection is still in step: the next message arrives intact.
    std::thread::scope(|s| {
        s.spawn(|| a.send_bytes(&message).expect("send"));
        match b.recv_bytes_into(&mut buf) {
            Err(ConnectionError::BufferTooShort { message: m, .. }) => assert_eq!(m, message),
            other => panic!("expected BufferTooShort, got {other:?}"),
        }
    });
    Ok(())
}

#[test]
fn send_bytes_range_is_validated() -> multiproc::Result<()> {
    let (mut a, mut b) = Pipe::<()>::duplex()?;
    let buf = b"0123456789";
    a.send_bytes_range(buf, 2, Some(3))?;
    a.send_bytes_range(buf, 7, None)?;
    a.send_bytes_range(buf, 10, Some(0))?;
    assert!(matches!(
        a.send_bytes_range(buf, 8, Some(3)),
        Err(ConnectionError::OutOfRange {
            offset: 8,
            size: 3,
            len: 10
        })
    ));
    assert!(matches!(
        a.send_bytes_range(buf, 11, None),
        Err(ConnectionError::OutOfRange { offset: 11, .. })
    ));
    assert_eq!(b.recv_bytes()?, b"234");
    assert_eq!(b.recv_bytes()?, b"789");
    assert_eq!(b.recv_bytes()?, b"");
    assert!(
        !b.poll(Some(Duration::ZERO))?,
        "nothing was sent for the bad ranges"
    );
    Ok(())
}

#[test]
fn the_wrong_end_of_a_simplex_pipe_is_an_error() -> multiproc::Result<()> {
    let (mut reader, mut writer) = Pipe::<u8>::simplex()?;
    assert!(reader.readable() && !reader.writable());
    assert!(writer.writable() && !writer.readable());
    assert!(matches!(
        reader.send(&1),
        Err(ConnectionError::WrongEnd {
            operation: "send",
            ..
        })
    ));
    assert!(matches!(
        writer.recv(),
        Err(ConnectionError::WrongEnd {
            operation: "recv",
            ..
        })
    ));
    assert!(matches!(
        writer.poll(Some(Duration::ZERO)),
        Err(ConnectionError::WrongEnd {
            operation: "poll",
            end: "writing"
        })
    ));
    writer.send(&9)?;
    assert_eq!(reader.recv()?, 9);
    Ok(())
}

#[test]
fn an_unencodable_value_fails_at_send_and_the_pipe_stays_usable() -> multiproc::Result<()> {
    let (mut a, mut b) = Pipe::<Item>::duplex()?;
    match a.send(&Item::Bad(1)) {
        Err(ConnectionError::Encode(_)) => {}
        other => panic!("expected an encode error, got {other:?}"),
    }
    a.send(&Item::Good(2))?;
    assert_eq!(b.recv()?, Item::Good(2));
    Ok(())
}

#[test]
fn a_message_of_another_type_is_a_decode_error() -> multiproc::Result<()> {
    let (mut a, b) = Pipe::<()>::duplex()?;
    let mut b: Connection<String> = reencode(b);
    a.send_bytes(&[0xff, 0xff])?;
    assert!(matches!(b.recv(), Err(ConnectionError::Decode(_))));
    Ok(())
}

/// The same end, typed differently, through its serialised form.
fn reencode<T>(conn: Connection<()>) -> Connection<T> {
    common::decode(&common::encode(&conn)).unwrap()
}

#[test]
fn poll_waits_about_its_timeout_and_sees_data_and_eof() -> multiproc::Result<()> {
    let (mut a, mut b) = Pipe::<u8>::duplex()?;
    let start = Instant::now();
    assert!(!b.poll(Some(Duration::from_millis(200)))?);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    a.send(&5)?;
    assert!(b.poll(Some(Duration::ZERO))?);
    a.send(&6)?;
    assert_eq!(b.recv()?, 5);
    // The second message may already sit in b's buffer: poll must still say so.
    assert!(b.poll(Some(Duration::ZERO))?);
    assert_eq!(b.recv()?, 6);
    drop(a);
    assert!(b.poll(None)?);
    assert!(matches!(b.recv(), Err(ConnectionError::Eof)));
    Ok(())
}

#[process_task]
fn reply_after(mut conn: Connection<String>, delay_ms: u64, text: String) {
    std::thread::sleep(Duration::from_millis(delay_ms));
    conn.send(&text).expect("send");
}

#[test]
fn wait_returns_the_connections_that_are_ready() -> multiproc::Result<()> {
    let mut readers = Vec::new();
    let mut children = Vec::new();
    for (delay, text) in [(1500u64, "slow"), (0, "fast")] {
        let (reader, writer) = Pipe::<String>::simplex()?;
        children.push(Process::new(task!(reply_after, writer, delay, text.to_string())).start()?);
        readers.push(reader);
    }
    let ready = multiproc::wait(&readers, Some(Duration::from_secs(10)))?;
    assert_eq!(ready, vec![1]);
    assert_eq!(readers[1].recv()?, "fast");
    assert!(multiproc::wait(&readers[..1], Some(Duration::from_millis(100)))?.is_empty());
    let ready = multiproc::wait(&readers[..1], None)?;
    assert_eq!(ready, vec![0]);
    assert_eq!(readers[0].recv()?, "slow");
    for child in children {
        child.join()?;
    }
    Ok(())
}

#[process_task]
fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn wait_mixes_connections_and_process_sentinels() -> multiproc::Result<()> {
    let (reader, _writer) = Pipe::<u8>::simplex()?;
    let short = Process::new(task!(sleep_ms, 50)).start()?;
    let long = Process::new(task!(sleep_ms, 5000)).start()?;
    let objects: [&dyn Waitable; 3] = [&reader, &long, &short];
    let start = Instant::now();
    let ready = multiproc::wait(&objects, Some(Duration::from_secs(10)))?;
    assert_eq!(ready, vec![2]);
    assert!(start.elapsed() < Duration::from_secs(4));
    short.join()?;
    let start = Instant::now();
    assert_eq!(
        multiproc::wait(&objects[..2], Some(Duration::from_millis(200)))?,
        Vec::<usize>::new()
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    long.kill()?;
    assert_eq!(multiproc::wait(&objects[..2], None)?, vec![1]);
    Ok(())
}

#[test]
fn a_serialised_end_is_taken_by_another_process() -> multiproc::Result<()> {
    let (mut reader, writer) = Pipe::<String>::simplex()?;
    let bytes = common::encode(&writer);
    // The sender closes its end at once (Python's `conn.send(w); w.close()`): the child still
    // gets it, lent by this process, not from its own inherited copy.
    drop(writer);
    let child = Process::fork(move || -> Result<(), String> {
        let mut writer: Connection<String> = common::decode(&bytes)?;
        writer
            .send(&"lent by SCM_RIGHTS".to_string())
            .map_err(|e| e.to_string())
    })?;
    assert_eq!(child.join()?, Ok(()));
    assert_eq!(reader.recv()?, "lent by SCM_RIGHTS");
    assert!(matches!(reader.recv(), Err(ConnectionError::Eof)));
    Ok(())
}

#[process_task]
fn send_through(queue: Queue<Vec<u8>>, words: Vec<String>) {
    let bytes = queue.get().unwrap();
    let mut writer: Connection<String> = common::decode(&bytes).unwrap();
    for word in words {
        writer.send(&word).unwrap();
    }
}

#[test]
fn an_end_sent_through_a_queue_and_closed_by_its_sender_reaches_the_receiver(
) -> multiproc::Result<()> {
    let queue = Queue::new()?;
    let child = Process::new(task!(
        send_through,
        queue.clone(),
        vec!["a".into(), "b".into()]
    ))
    .start()?;
    let (mut reader, writer) = Pipe::<String>::simplex()?;
    queue.put(common::encode(&writer))?;
    drop(writer);
    assert_eq!(reader.recv()?, "a");
    assert_eq!(reader.recv()?, "b");
    child.join()?;
    assert!(matches!(reader.recv(), Err(ConnectionError::Eof)));
    Ok(())
}

#[test]
fn a_serialised_end_is_taken_once() -> multiproc::Result<()> {
    let (_reader, writer) = Pipe::<u8>::simplex()?;
    let bytes = common::encode(&writer);
    let first: Result<Connection<u8>, String> = common::decode(&bytes);
    assert!(first.is_ok());
    let again: Result<Connection<u8>, String> = common::decode(&bytes);
    let Err(err) = again else {
        panic!("a loan is taken once")
    };
    assert!(err.contains("lent no such descriptor"), "{err}");
    Ok(())
}
