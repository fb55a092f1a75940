//! Handle decoding: a message that claims to be shared objects (shared memory, pipe ends,
//! queues, shared values and arrays, locks) must decode to working handles or to an error,
//! never a crash or a mapping of the wrong memory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use multiproc::shm::SharedMemory;
use multiproc::{Array, Connection, Event, Lock, Pipe, Queue, Value};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
enum Handle {
    Shm(SharedMemory),
    End(Connection<u8>),
    Queue(Queue<u16>),
    Value(Value<u64>),
    Array(Array<u8>),
    Lock(Lock),
    Event(Event),
}

fuzz_target!(|data: &[u8]| {
    let Ok((mut a, mut b)) = Pipe::<Vec<Handle>>::duplex() else {
        return;
    };
    if a.send_bytes(&data[..data.len().min(60_000)]).is_ok() {
        let _ = b.recv();
    }
});
