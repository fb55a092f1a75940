//! Two tasks registered under one name are an error at start, never a silent pick.
//!
//! This is its own test binary: the duplicate makes every task start in it fail.

use multiproc::prelude::*;
use multiproc::{Error, ProcessHandle};

type Started = (&'static str, multiproc::Result<ProcessHandle<u32>>);

fn start_first() -> Started {
    #[process_task]
    fn twin() -> u32 {
        1
    }
    (task!(twin).name(), Process::new(task!(twin)).start())
}

fn start_second() -> Started {
    #[process_task]
    fn twin() -> u32 {
        2
    }
    (task!(twin).name(), Process::new(task!(twin)).start())
}

#[test]
fn a_name_registered_twice_is_an_error_at_start() {
    for (name, started) in [start_first(), start_second()] {
        assert!(name.ends_with("duplicate_task::twin"), "{name}");
        match started {
            Err(Error::DuplicateTask { name: reported }) => assert_eq!(reported, name),
            other => panic!("expected a duplicate-task error, got {other:?}"),
        }
    }
}
