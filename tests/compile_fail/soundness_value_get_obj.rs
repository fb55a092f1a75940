// A guard lends the value as `&mut i64`; the raw form reached without `unsafe` would let
// another thread write the same bytes meanwhile.
use multiproc::prelude::*;

fn main() {
    let v = Value::new(0i64).unwrap();
    let mut guard = v.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| v.get_obj().set(7));
        *guard += 1;
    });
}
