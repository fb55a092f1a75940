//! The codec's encoder and decoder hold to postcard's format: each value of serde's data model
//! encodes to the bytes postcard gives it, and postcard's bytes decode back to the value.

use super::{decode, encode, CodecError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Newtype(i32);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Pair(u8, String);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(f32, f32),
    Named { name: String, sides: Option<u16> },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Everything {
    flags: (bool, bool),
    small: (u8, i8, u16, i16, u32, i32),
    large: (u64, i64, u128, i128),
    floats: (f32, f64),
    chars: Vec<char>,
    text: String,
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
    maybe: Option<Option<Unit>>,
    units: ((), Unit, Vec<()>),
    wrapped: (Newtype, Pair),
    shapes: Vec<Shape>,
    map: BTreeMap<String, Vec<i64>>,
    set: HashSet<u32>,
}

fn everything(seed: i64) -> Everything {
    Everything {
        flags: (true, false),
        small: (
            u8::MAX,
            i8::MIN,
            u16::MAX,
            i16::MIN,
            u32::MAX,
            i32::MIN + seed as i32,
        ),
        large: (u64::MAX, i64::MIN, u128::MAX, i128::MIN),
        floats: (f32::NAN, -0.0),
        chars: vec!['a', 'é', '€', '😀'],
        text: "héllo".repeat(seed as usize),
        bytes: (0..=255).collect(),
        maybe: Some(Some(Unit)),
        units: ((), Unit, vec![(); 3]),
        wrapped: (Newtype(-seed as i32), Pair(7, "pair".into())),
        shapes: vec![
            Shape::Empty,
            Shape::Circle(1.5),
            Shape::Rect(2.0, 3.0),
            Shape::Named {
                name: "hex".into(),
                sides: Some(6),
            },
        ],
        map: [("a".to_string(), vec![seed, -seed, 0])].into(),
        set: (0..seed as u32 * 100).collect(),
    }
}

#[test]
fn values_encode_to_postcards_bytes_and_decode_from_them() {
    for seed in [0, 1, 5, 1000] {
        let value = everything(seed);
        let ours = encode(&value).unwrap();
        assert_eq!(ours, postcard::to_stdvec(&value).unwrap(), "seed {seed}");
        let back: Everything = decode(&ours).unwrap();
        // NaN is not equal to itself: compare it by its bits, the rest as values.
        assert_eq!(back.floats.0.to_bits(), value.floats.0.to_bits());
        let nan_free = |v: Everything| Everything {
            floats: (0.0, v.floats.1),
            ..v
        };
        assert_eq!(nan_free(back), nan_free(value));
    }
}

#[test]
fn integers_at_every_varint_width_agree_with_postcard() {
    for shift in 0..64 {
        for n in [1u64 << shift, (1u64 << shift) - 1, u64::MAX >> shift] {
            let signed = [n as i64, (n as i64).wrapping_neg()];
            let value = (
                n,
                n as u32,
                n as u16,
                signed,
                signed.map(|s| s as i32),
                n as u128,
            );
            let bytes = postcard::to_stdvec(&value).unwrap();
            assert_eq!(encode(&value).unwrap(), bytes);
            assert_eq!(
                decode::<(u64, u32, u16, [i64; 2], [i32; 2], u128)>(&bytes),
                Ok(value)
            );
        }
    }
}

#[test]
fn varints_too_long_or_too_large_for_their_type_are_refused_as_postcard_refuses_them() {
    let cases: [(&[u8], bool); 4] = [
        // u16::MAX is three bytes, the last holding two bits.
        (&[0xff, 0xff, 0x03], true),
        (&[0xff, 0xff, 0x04], false),
        (&[0x80, 0x80, 0x80, 0x00], false),
        (&[0x80, 0x00], true),
    ];
    for (bytes, fine) in cases {
        let ours = decode::<u16>(bytes);
        assert_eq!(ours.is_ok(), fine, "{bytes:?}");
        assert_eq!(postcard::from_bytes::<u16>(bytes).is_ok(), fine);
        if let Err(CodecError::Decode(e)) = ours {
            assert!(e.reason().contains("badly encoded"), "{e}");
        }
    }
}
