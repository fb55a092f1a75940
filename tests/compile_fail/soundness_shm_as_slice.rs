// Viewing bytes that another handle or process may write as a slice needs `unsafe`.
use multiproc::shm::SharedMemory;

fn main() {
    let mut shm = SharedMemory::create(None, 8).unwrap();
    let other = SharedMemory::attach(shm.name()).unwrap();
    let bytes: &[u8] = other.as_slice();
    shm.as_mut_slice()[0] = 1;
    println!("{}", bytes[0]);
}
