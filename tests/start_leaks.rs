//! A thousand starts under each start method leave no descriptor open and no zombie behind.

use multiproc::prelude::*;
use multiproc::{get_all_start_methods, get_context, Context, StartMethod};

#[process_task]
fn noop() {}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The children of this process that are zombies (ended, not reaped).
fn zombies() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let parent = fields.next();
            state == Some("Z") && parent == Some(me.as_str())
        })
        .count()
}

fn start_join(context: &Context) {
    let child = context.process(task!(noop)).start().unwrap();
    child.join().unwrap();
}

fn starts_leak_nothing(method: StartMethod) {
    let context = get_context(method).unwrap();
    // The first start may open what lasts (the fork server and its sockets).
    start_join(&context);
    let before = open_descriptors();
    for _ in 0..1000 {
        start_join(&context);
    }
    assert_eq!(
        open_descriptors(),
        before,
        "{method}: descriptors left open"
    );
    assert_eq!(zombies(), 0, "{method}: children left unreaped");
}

/// One test, the methods in turn: other tests' starts would change the counts meanwhile.
#[test]
fn a_thousand_starts_by_each_method_leak_no_descriptor_and_no_zombie() {
    for method in get_all_start_methods() {
        starts_leak_nothing(method);
    }
}
