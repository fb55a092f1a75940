//! The manager's request decoder: a client's raw stream of arbitrary bytes, answered by a
//! server's object table. Every whole frame must get a reply frame (a result or an error),
//! never a crash, a hang or an allocation of what a header merely announces.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let replies = multiproc::__private::answer_manager_requests(data);
    // The replies are whole frames: a 64-bit length, then that many bytes.
    let mut rest = replies.as_slice();
    while !rest.is_empty() {
        let (header, body) = rest.split_at(8);
        let len = u64::from_le_bytes(header.try_into().unwrap()) as usize;
        assert!(len <= body.len(), "a reply frame is cut short");
        rest = &body[len..];
    }
});
