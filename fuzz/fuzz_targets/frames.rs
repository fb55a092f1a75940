//! Frame decoding: a stream of arbitrary bytes on a connection, read frame by frame (a 64-bit
//! length, then the payload) and decoded, until the stream ends. Every frame must come out as a
//! value or an error, never a crash, a hang or an allocation of what a header merely announces.

#![no_main]

use libfuzzer_sys::fuzz_target;
use multiproc::{ConnectionError, Pipe, Waitable};
use std::io::Write;
use std::os::fd::AsRawFd;

fuzz_target!(|data: &[u8]| {
    let Ok((mut reader, writer)) = Pipe::<(u32, Vec<String>, Option<Vec<u8>>)>::simplex() else {
        return;
    };
    // The raw stream, headers included, written past the connection's own framing: the pipe
    // reopened for writing through /proc, as a FIFO. A fuzz input fits in the pipe's buffer.
    let Some(fd) = reader.wait_fd().map(|fd| fd.as_raw_fd()) else {
        return;
    };
    let Ok(mut raw) = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
    else {
        return;
    };
    let _ = raw.write_all(&data[..data.len().min(60_000)]);
    drop(raw);
    drop(writer);
    // Each frame is a value or an error; the stream then ends. A frame is at least a byte.
    for _ in 0..=data.len() {
        if matches!(reader.recv(), Err(ConnectionError::Eof)) {
            return;
        }
    }
    panic!("the stream did not end after {} bytes", data.len());
});
