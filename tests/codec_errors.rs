//! An encode or decode failure says why: the message the value's own `Serialize` or
//! `Deserialize` gave, the type, and where in it; and a type the codec cannot express says so.

use multiproc::error::CodecError;
use multiproc::prelude::*;
use multiproc::shm::SharedMemory;
use multiproc::ConnectionError;
use serde::{Deserialize, Deserializer, Serialize};
use std::error::Error as _;

#[path = "support/unencodable.rs"]
mod unencodable;

/// An error and all its sources, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text += &format!(" / {inner}");
        source = inner.source();
    }
    text
}

/// A year that refuses, when decoded, to be past 9999.
#[derive(Debug, Serialize)]
struct Year(u32);

impl<'de> Deserialize<'de> for Year {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u32::deserialize(deserializer)? {
            year @ 0..=9999 => Ok(Year(year)),
            year => Err(serde::de::Error::custom(format!(
                "year {year} is out of range"
            ))),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Meeting {
    title: String,
    when: Vec<Year>,
}

#[process_task]
fn count_years(meeting: Meeting) -> usize {
    meeting.when.len()
}

#[test]
fn an_arguments_own_decode_message_reaches_the_caller_with_type_and_field() {
    let meeting = Meeting {
        title: "launch".into(),
        when: vec![Year(2026), Year(10_000)],
    };
    // A pool's workers did not inherit the arguments: they decode them.
    let pool = Pool::new(1).unwrap();
    let err = pool.apply(task!(count_years, meeting)).unwrap_err();
    let message = chain(&err);
    assert!(message.contains("year 10000 is out of range"), "{message}");
    assert!(message.contains("Meeting"), "{message}");
    assert!(message.contains(".when[1]"), "{message}");
    assert!(!message.contains("Serde"), "{message}");
}

#[process_task]
fn unencodable_result() -> unencodable::Item {
    unencodable::Item::Bad(0)
}

#[test]
fn a_results_own_encode_message_reaches_the_caller_with_type_and_variant() {
    let child = Process::new(task!(unencodable_result)).start().unwrap();
    let err = child.join().unwrap_err();
    let message = chain(&err);
    assert!(
        message.contains("this value refuses to be encoded"),
        "{message}"
    );
    assert!(message.contains("unencodable::Item"), "{message}");
    assert!(message.contains("::Bad`"), "{message}");
}

#[test]
fn an_unlinked_shared_memory_handle_says_not_found() {
    let shm = SharedMemory::create(None, 64).unwrap();
    let (mut a, mut b) = Pipe::<SharedMemory>::duplex().unwrap();
    a.send(&shm).unwrap();
    shm.unlink().unwrap();
    let err = b.recv().unwrap_err();
    let message = chain(&err);
    assert!(
        message.contains(&format!("shared memory `{}` not found", shm.name())),
        "{message}"
    );
    assert!(message.contains("SharedMemory`: "), "{message}");
}

#[process_task]
fn send_an_end(mut conn: Connection<Connection<u8>>) {
    let (end, _other) = Pipe::<u8>::duplex().expect("pipe");
    conn.send(&end).expect("send");
}

#[test]
fn a_pipe_end_whose_sender_has_exited_says_it_cannot_be_taken() {
    let (mut ours, theirs) = Pipe::<Connection<u8>>::duplex().unwrap();
    let child = Process::new(task!(send_an_end, theirs)).start().unwrap();
    child.join().unwrap();
    let err = ours.recv().unwrap_err();
    let message = chain(&err);
    assert!(
        message.contains(&format!("cannot reach process {}", child.pid())),
        "{message}"
    );
    assert!(message.contains("Connection<u8>"), "{message}");
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Loose {
    Number(u32),
    Text(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    id: u32,
    body: Loose,
}

#[test]
fn an_untagged_enum_is_refused_by_name_when_decoded() {
    let (mut a, mut b) = Pipe::<Envelope>::duplex().unwrap();
    a.send(&Envelope {
        id: 1,
        body: Loose::Number(2),
    })
    .unwrap();
    let Err(ConnectionError::Decode(CodecError::Decode(e))) = b.recv() else {
        panic!("expected a decode error")
    };
    assert!(e.type_name().ends_with("Envelope"), "{e}");
    assert_eq!(e.path(), ".body");
    assert!(e.reason().contains("not self-describing"), "{e}");
    assert!(e.reason().contains("#[serde(untagged)]"), "{e}");
}

#[test]
fn a_json_value_is_refused_by_name_when_decoded() {
    let (mut a, mut b) = Pipe::<Vec<serde_json::Value>>::duplex().unwrap();
    a.send(&vec![serde_json::json!(1)]).unwrap();
    let err = b.recv().unwrap_err();
    let message = chain(&err);
    assert!(
        message.contains("serde_json::value::Value>` at `[0]`"),
        "{message}"
    );
    assert!(message.contains("not self-describing"), "{message}");
}

#[derive(Debug, Serialize, Deserialize)]
struct Flattened {
    id: u32,
    #[serde(flatten)]
    rest: std::collections::BTreeMap<String, u32>,
}

#[test]
fn a_flattened_struct_is_refused_by_name_when_encoded() {
    let (mut a, _b) = Pipe::<Flattened>::duplex().unwrap();
    let value = Flattened {
        id: 1,
        rest: [("x".to_string(), 2)].into(),
    };
    let Err(ConnectionError::Encode(CodecError::Encode(e))) = a.send(&value) else {
        panic!("expected an encode error")
    };
    assert!(e.type_name().ends_with("Flattened"), "{e}");
    assert!(e.reason().contains("unknown length"), "{e}");
    assert!(e.reason().contains("#[serde(flatten)]"), "{e}");
    assert!(e.source().is_none());
}
