// A guard stays on the thread that took it (its lock may be an `RLock`, owned by a thread).
use multiproc::prelude::*;

fn main() {
    let v = Value::new(0i64).unwrap();
    let guard = v.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || drop(guard));
    });
}
