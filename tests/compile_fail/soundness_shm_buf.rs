// `buf`/`buf_mut` lent the bytes as safe slices while other handles and processes write them:
// they are gone.
use multiproc::shm::SharedMemory;

fn main() {
    let mut shm = SharedMemory::create(None, 8).unwrap();
    let other = SharedMemory::attach(shm.name()).unwrap();
    let bytes: &[u8] = other.buf();
    shm.buf_mut()[0] = 1;
    println!("{}", bytes[0]);
}
