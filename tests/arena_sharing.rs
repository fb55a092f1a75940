//! The space of a dropped shared object is used again only once no other process can reach
//! it: a child that inherited it, or a process it was sent to, keeps seeing its own value while
//! the parent drops its handle and makes new objects.

use multiproc::prelude::*;
use multiproc::sync::Event;

/// New values made after a drop: more than an arena's worth, so they would cover the dropped
/// one's place if it were given back.
const NEW_VALUES: u64 = 20_000;

fn make_new_values() -> Vec<Value<u64>> {
    (0..NEW_VALUES).map(|_| Value::new(99).unwrap()).collect()
}

#[test]
fn a_value_a_forked_child_holds_keeps_its_place_after_the_parent_drops_it() {
    let value = Value::new(7u64).unwrap();
    let go = Event::new().unwrap();
    let child = {
        let (value, go) = (value.clone(), go.clone());
        Process::fork(move || {
            go.wait();
            let seen = value.get();
            value.set(8);
            seen
        })
        .unwrap()
    };
    drop(value);
    let new = make_new_values();
    go.set();
    assert_eq!(child.join().unwrap(), 7, "the child's value kept its place");
    assert!(
        new.iter().all(|v| v.get() == 99),
        "and the child wrote only to it"
    );
}

#[test]
fn a_value_sent_to_another_process_keeps_its_place_after_the_sender_drops_it() {
    let (mut rx, mut tx) = Pipe::<Value<u64>>::simplex().unwrap();
    let go = Event::new().unwrap();
    // Forked before the value exists: only the sending makes it reachable there.
    let child = {
        let go = go.clone();
        Process::fork(move || {
            let value = rx.recv().unwrap();
            go.wait();
            let seen = value.get();
            value.set(8);
            seen
        })
        .unwrap()
    };
    let value = Value::new(7u64).unwrap();
    tx.send(&value).unwrap();
    drop(value);
    let new = make_new_values();
    go.set();
    assert_eq!(
        child.join().unwrap(),
        7,
        "the receiver's value kept its place"
    );
    assert!(
        new.iter().all(|v| v.get() == 99),
        "and the receiver wrote only to it"
    );
}
