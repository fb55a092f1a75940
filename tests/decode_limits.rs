//! The decoder's limits: a forged message can neither overflow the receiver's stack with deep
//! nesting nor keep it busy for ever with a huge count of elements that take no bytes.

use multiproc::prelude::*;
use multiproc::ConnectionError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc;
use std::time::Duration;

/// The README's documented limits.
const MAX_DEPTH: usize = 128;
const MAX_EMPTY_ELEMENTS: usize = 1 << 20;

/// What receiving `bytes` as a `T` gives, as text; a test failure if it takes more than a
/// minute (the receiver is stuck).
fn receive<T>(bytes: Vec<u8>) -> String
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut a, mut b) = Pipe::<T>::duplex().expect("pipe");
        // A large message fills the pipe: it is sent while it is received.
        let sender = std::thread::spawn(move || a.send_bytes(&bytes).expect("send"));
        let text = match b.recv() {
            Ok(_) => "decoded without error".to_owned(),
            Err(ConnectionError::Decode(e)) => e.to_string(),
            Err(other) => panic!("{other:?}"),
        };
        sender.join().expect("sender");
        let _ = done.send(text);
    });
    result
        .recv_timeout(Duration::from_secs(60))
        .expect("the receiver is stuck")
}

/// A recursive type: a list as deep as it is long.
#[derive(Debug, Serialize, Deserialize)]
enum Nest {
    End,
    More(Box<Nest>),
}

fn nest(depth: usize) -> Nest {
    (0..depth).fold(Nest::End, |inner, _| Nest::More(Box::new(inner)))
}

#[test]
fn a_message_nested_a_million_deep_is_refused_not_a_crash() {
    // `More` is variant 1, `End` variant 0.
    let mut bytes = vec![1u8; 1_000_000];
    bytes.push(0);
    let message = receive::<Nest>(bytes);
    assert!(
        message.contains(&format!("values nest more than {MAX_DEPTH} levels deep")),
        "{message}"
    );
    assert!(message.contains("decode_limits::Nest"), "{message}");
}

#[test]
fn nesting_up_to_the_limit_crosses_and_past_it_is_refused_by_the_sender() {
    let (mut a, mut b) = Pipe::<Nest>::duplex().unwrap();
    a.send(&nest(MAX_DEPTH - 1)).unwrap();
    let mut depth = 0;
    let mut node = b.recv().unwrap();
    while let Nest::More(inner) = node {
        depth += 1;
        node = *inner;
    }
    assert_eq!(depth, MAX_DEPTH - 1);
    let Err(ConnectionError::Encode(err)) = a.send(&nest(MAX_DEPTH + 1)) else {
        panic!("expected an encode error")
    };
    assert!(err.to_string().contains("nest more than 128"), "{err}");
}

/// A length of `u64::MAX` as a varint: ten bytes.
fn huge_len() -> Vec<u8> {
    let mut bytes = vec![0xff; 9];
    bytes.push(0x01);
    bytes
}

#[test]
fn a_ten_byte_message_declaring_endless_empty_elements_is_refused_at_once() {
    let declared = format!("declares {} elements", u64::MAX);
    for message in [
        receive::<Vec<()>>(huge_len()),
        receive::<HashSet<()>>(huge_len()),
        receive::<BTreeMap<(), ()>>(huge_len()),
    ] {
        assert!(message.contains(&declared), "{message}");
        assert!(
            message.contains(&format!(
                "only 0 bytes remain and at most {MAX_EMPTY_ELEMENTS} elements may take no bytes"
            )),
            "{message}"
        );
    }
}

/// `len` as a varint.
fn varint(mut len: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    while len >= 0x80 {
        bytes.push(len as u8 | 0x80);
        len >>= 7;
    }
    bytes.push(len as u8);
    bytes
}

#[test]
fn empty_elements_past_the_allowance_are_refused_even_among_many_bytes() {
    // Two million `()` declared in front of two million bytes: the length is possible, but
    // the elements take none of the bytes that would justify it.
    let count = 2 * MAX_EMPTY_ELEMENTS as u64;
    let mut bytes = varint(count);
    bytes.extend(varint(count));
    bytes.resize(bytes.len() + count as usize, 7);
    let message = receive::<(Vec<()>, Vec<u8>)>(bytes);
    assert!(
        message.contains(&format!(
            "more than {MAX_EMPTY_ELEMENTS} elements that take no bytes"
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!("at `.0[{MAX_EMPTY_ELEMENTS}]`")),
        "{message}"
    );
}

#[test]
fn empty_elements_within_the_allowance_and_maps_of_unit_values_cross() {
    let (mut a, mut b) = Pipe::<(Vec<()>, HashSet<()>, BTreeMap<u32, ()>)>::duplex().unwrap();
    // Each entry's key takes bytes, so a map of unit values is not limited by the allowance.
    let map: BTreeMap<u32, ()> = (0..MAX_EMPTY_ELEMENTS as u32 + 10)
        .map(|k| (k, ()))
        .collect();
    let value = (vec![(); 1000], HashSet::from([()]), map);
    std::thread::scope(|s| {
        s.spawn(|| a.send(&value).unwrap());
        assert_eq!(b.recv().unwrap(), value);
    });
}
