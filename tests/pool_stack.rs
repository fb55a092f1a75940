//! Pool workers' stacks: a worker that replaces another (after `maxtasksperchild` chunks, or a
//! death) has as much stack as the first ones had.

use multiproc::prelude::*;

/// A main thread's stack on most Linux systems (`ulimit -s` 8192).
const MAIN_STACK: usize = 8 << 20;

/// Uses about 3 MiB of stack: more than a thread's default 2 MiB, less than a main thread's.
#[process_task]
fn deep(x: u64) -> u64 {
    let mut frame = [0u8; 3 << 20];
    // Touching every page makes the stack really that deep; `black_box` keeps the array.
    for page in frame.iter_mut().step_by(4096) {
        *page = x as u8;
    }
    std::hint::black_box(&mut frame);
    x
}

#[test]
fn renewed_workers_have_the_first_workers_stack() {
    // libtest runs each test on a 2 MiB thread: build the pool where a program usually does,
    // on a thread with a main thread's stack.
    let results = std::thread::Builder::new()
        .stack_size(MAIN_STACK)
        .spawn(|| {
            let pool = Pool::builder()
                .processes(2)
                .maxtasksperchild(1)
                .build()
                .unwrap();
            pool.map_chunked(task!(deep), 0..8, 1)
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(results.unwrap(), (0..8).collect::<Vec<u64>>());
}
