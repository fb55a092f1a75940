//! The limits the decoder enforces, so that a forged or corrupt message is an error rather than
//! a crash or a hang of the receiving process.
//!
//! The README lists them for users; `tests/decode_limits.rs` holds them to their word.

/// How deeply values may nest: each `Option` that is `Some`, newtype struct, sequence, tuple,
/// map, struct and enum variant is one level. A message nested deeper is refused before its
/// nesting can exhaust the receiver's stack (a recursive enum a million deep would otherwise
/// abort it), and a value nested deeper is refused by the sender.
pub(crate) const MAX_DEPTH: u32 = 128;

/// How many elements that take no bytes (`()`, unit structs, empty tuples) one message may
/// hold in its sequences and maps. Any other element takes at least one byte, so a declared
/// length is checked against the bytes that remain plus this allowance; without it, ten bytes
/// declaring 2^64 `()` would keep the receiver busy for ever.
pub(crate) const MAX_EMPTY_ELEMENTS: usize = 1 << 20;
