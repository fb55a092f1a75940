// A guard lends the items as `&mut [u8]`; the raw form reached without `unsafe` would let
// another thread write them meanwhile.
use multiproc::prelude::*;

fn main() {
    let a = Array::<u8>::new(4).unwrap();
    let mut items = a.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| a.get_obj().set(0, 7));
        items[0] += 1;
    });
}
