//! Bad input on a connection: headers that announce more than arrives, messages past a
//! maximum, and forged serialised ends. Each is an error, and the process neither panics nor
//! allocates what the input merely claims.

mod common;

use multiproc::prelude::*;
use multiproc::ConnectionError;
use multiproc::Waitable;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;

/// What a forged header claims: far more than the test ever sends.
const CLAIMED: u64 = 3 << 30;

/// A reading end, and a raw writing end of its pipe through which a test writes what a peer
/// could: the pipe reopened for writing through `/proc/self/fd`.
fn raw_pipe() -> (Connection<()>, File) {
    let (reader, writer) = Pipe::<()>::simplex().expect("pipe");
    let fd = reader.wait_fd().expect("a reading end").as_raw_fd();
    let raw = File::options()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .expect("reopen the pipe for writing");
    drop(writer);
    (reader, raw)
}

/// The serialised form of a reading end, as a peer could forge it.
fn forged_end(pid: u32, read: serde_json::Value) -> Vec<u8> {
    let end = serde_json::json!({ "pid": pid, "read": read, "write": null });
    serde_json::to_vec(&end).unwrap()
}

/// A reading end whose stream holds `bytes` and then ends.
fn stream_of(bytes: &[u8]) -> Connection<()> {
    let (reader, mut raw) = raw_pipe();
    raw.write_all(bytes).expect("write");
    reader
}

/// This process's peak resident memory, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_header_claiming_3_gib_is_truncated_without_allocating_it() {
    let before = peak_rss_kib();
    let mut reader = stream_of(&CLAIMED.to_le_bytes());
    let error = reader.recv_bytes().unwrap_err();
    assert!(
        matches!(
            error,
            ConnectionError::Truncated {
                expected: CLAIMED,
                received: 0
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the connection closed in the middle of a message: 0 of 3221225472 bytes"
    );
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(grown_mib < 100, "peak memory grew by {grown_mib} MiB");
}

#[test]
fn a_message_past_the_maximum_is_refused_and_the_next_one_arrives() -> multiproc::Result<()> {
    let (mut reader, mut writer) = Pipe::<u32>::simplex()?;
    // Larger than the pipe's buffer, so it is skipped while it is still being written.
    let big = vec![7u8; 3 << 20];
    let sender = std::thread::spawn(move || -> multiproc::Result<()> {
        writer.send_bytes(b"0123456789")?;
        writer.send_bytes(&big)?;
        writer.send_bytes(b"small")?;
        writer.send(&42)?;
        Ok(())
    });
    let error = reader.recv_bytes_max(9).unwrap_err();
    assert_eq!(
        error.to_string(),
        "bad message length: the message has 10 bytes, more than the maximum of 9"
    );
    let error = reader.recv_bytes_max(1000).unwrap_err();
    assert!(
        matches!(
            error,
            ConnectionError::MessageTooLong {
                len: 3145728,
                max: 1000
            }
        ),
        "{error:?}"
    );
    assert_eq!(reader.recv_bytes_max(5)?, b"small");
    assert_eq!(reader.recv()?, 42);
    sender.join().unwrap()?;
    assert!(matches!(
        reader.recv_bytes_max(0),
        Err(ConnectionError::Eof)
    ));
    Ok(())
}

#[test]
fn a_header_claiming_3_gib_past_the_maximum_is_skipped_as_far_as_bytes_arrive() {
    let mut stream = CLAIMED.to_le_bytes().to_vec();
    stream.extend_from_slice(&[1; 1000]);
    let mut reader = stream_of(&stream);
    let error = reader.recv_bytes_max(1 << 20).unwrap_err();
    assert!(
        matches!(
            error,
            ConnectionError::Truncated {
                expected: CLAIMED,
                received: 1000
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_forged_end_naming_slot_minus_1_is_a_decode_error() {
    let read = serde_json::json!({ "fd": -1, "dev": 0, "ino": 0 });
    let result: Result<Connection<()>, String> = common::decode(&forged_end(0, read));
    let error = result.unwrap_err();
    assert!(error.contains("-1 is not a descriptor slot"), "{error}");
}

#[test]
fn a_forged_end_without_a_loan_is_a_decode_error() {
    let read = serde_json::json!({ "fd": 0, "dev": 0, "ino": 0 });
    let result: Result<Connection<()>, String> =
        common::decode(&forged_end(std::process::id(), read));
    let error = result.unwrap_err();
    assert!(error.contains("neither a slot nor a loan"), "{error}");
}

#[test]
fn a_forged_loan_is_a_decode_error() {
    let (_reader, writer) = Pipe::<()>::simplex().unwrap();
    // A genuine loan, its key changed: no such loan, and the genuine one stays untouched.
    let mut genuine: serde_json::Value = serde_json::from_slice(&common::encode(&writer)).unwrap();
    let key = genuine["write"]["loan"]["key"].as_u64().unwrap();
    let mut forged = genuine.clone();
    forged["write"]["loan"]["key"] = serde_json::json!(key ^ 1);
    let result: Result<Connection<()>, String> =
        common::decode(&serde_json::to_vec(&forged).unwrap());
    let error = result.unwrap_err();
    assert!(error.contains("lent no such descriptor"), "{error}");
    genuine["write"]["loan"]["key"] = serde_json::json!(key);
    let taken: Result<Connection<()>, String> =
        common::decode(&serde_json::to_vec(&genuine).unwrap());
    assert!(taken.is_ok());
}
