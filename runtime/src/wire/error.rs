//! What the codec says when a value cannot cross: why, in which type, and where in it.
//!
//! Inside the codec a failure is a [`Fault`]: its reason, and the path from the failing spot
//! back up to the top, one step added by each compound value the error passes through on its
//! way out. At the entry point it becomes a [`WireError`], which names the type decoded or
//! encoded.

use super::limits::{MAX_DEPTH, MAX_EMPTY_ELEMENTS};
use std::fmt::{self, Display, Write};

/// Why a value could not cross a process boundary in the wire format (Python raises
/// `pickle.PicklingError` and `pickle.UnpicklingError` for these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be encoded: its `Serialize` failed, or the codec cannot express it.
    #[error("could not encode a value for another process: {0}")]
    Encode(#[source] WireError),
    /// The bytes are not a value of the expected type, or the type's `Deserialize` refused them.
    #[error("could not decode a message from another process: {0}")]
    Decode(#[source] WireError),
    /// The bytes break a rule of the wire format (trailing bytes, a length that does not fit).
    #[error("could not decode a message from another process: {0}")]
    Malformed(String),
}

impl CodecError {
    /// What went wrong, without the prefix that says which way: for a failure reported inside
    /// a [`TaskFailure`](super::TaskFailure), which says it itself.
    pub(crate) fn detail(&self) -> String {
        match self {
            CodecError::Encode(e) | CodecError::Decode(e) => e.to_string(),
            CodecError::Malformed(message) => message.clone(),
        }
    }
}

/// Why a value did not encode or decode, for which type, and where in it: what Python's
/// `pickle.PicklingError` and `UnpicklingError` say.
///
/// Displayed as ``` `TYPE` at `PATH`: REASON ```, for instance
/// ``` `my::Args` at `.when`: year 10000 is out of range ```.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    reason: String,
    type_name: &'static str,
    path: String,
}

impl WireError {
    /// Why: the message the value's own `Serialize` or `Deserialize` gave (its
    /// `Error::custom`), or what the codec found wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The type that was being encoded or decoded, as `std::any::type_name` spells it.
    pub fn type_name(&self) -> &str {
        self.type_name
    }

    /// Where in the value it failed, from the top: `.field`, `.0` (a tuple's element), `[3]` (a
    /// sequence's), `::Variant`, `[entry 2].key`; empty if the value as a whole failed.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.type_name)?;
        if !self.path.is_empty() {
            write!(f, " at `{}`", self.path)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for WireError {}

/// A failure inside the codec, on its way out to the entry point. Boxed, so that a `Result`
/// of a small value stays small.
#[derive(Debug)]
pub(crate) struct Fault(Box<FaultInner>);

#[derive(Debug)]
struct FaultInner {
    reason: Reason,
    /// Innermost step first.
    path: Vec<Step>,
}

/// Why the codec failed.
#[derive(Debug)]
pub(crate) enum Reason {
    /// A value's own `Serialize` or `Deserialize` failed with this message.
    Custom(String),
    /// The bytes ran out: `need` were wanted, `have` remained.
    Eof {
        need: u64,
        have: usize,
    },
    BadVarint,
    BadBool(u8),
    BadOption(u8),
    BadChar,
    BadUtf8,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A sequence or map declares more elements than the message can hold.
    TooLong {
        len: u64,
        remaining: usize,
    },
    /// More than [`MAX_EMPTY_ELEMENTS`] elements took no bytes.
    TooManyEmpty,
    /// The type asked the decoder for a value of whatever kind comes next (the method named).
    NotSelfDescribing(&'static str),
    /// A sequence or map without a length.
    LengthUnknown,
    /// The output buffer is full.
    BufferFull,
}

/// One step down into a value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    /// A struct's field.
    Field(&'static str),
    /// A tuple's element.
    Element(usize),
    /// A sequence's element.
    Index(usize),
    /// An enum's variant.
    Variant(&'static str),
    /// The key of a map's entry.
    Key(usize),
    /// The value of a map's entry.
    Value(usize),
}

impl Fault {
    /// A failure for `reason`; out of line, so that the paths that can fail stay small enough
    /// to inline.
    #[cold]
    #[inline(never)]
    pub(crate) fn new(reason: Reason) -> Self {
        Fault(Box::new(FaultInner {
            reason,
            path: Vec::new(),
        }))
    }

    /// The same failure, seen from one step further out.
    #[cold]
    #[inline(never)]
    pub(crate) fn at(mut self, step: Step) -> Self {
        self.0.path.push(step);
        self
    }

    /// The failure as the entry point for `type_name` reports it.
    #[cold]
    pub(crate) fn into_wire(self, type_name: &'static str) -> WireError {
        let mut path = String::new();
        for step in self.0.path.iter().rev() {
            // Writing to a String cannot fail.
            let _ = match step {
                Step::Field(name) => write!(path, ".{name}"),
                Step::Element(i) => write!(path, ".{i}"),
                Step::Index(i) => write!(path, "[{i}]"),
                Step::Variant(name) => write!(path, "::{name}"),
                Step::Key(i) => write!(path, "[entry {i}].key"),
                Step::Value(i) => write!(path, "[entry {i}].value"),
            };
        }
        WireError {
            reason: self.0.reason.to_string(),
            type_name,
            path,
        }
    }
}

impl Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Custom(message) => f.write_str(message),
            Reason::Eof { need, have } => write!(
                f,
                "the message ends early: {need} more bytes are needed, {have} remain (it is \
                 truncated, or is not a value of this type)"
            ),
            Reason::BadVarint => {
                f.write_str("a number is badly encoded, or too large for its type")
            }
            Reason::BadBool(byte) => write!(f, "byte {byte} is not a bool (0 or 1)"),
            Reason::BadOption(byte) => write!(
                f,
                "byte {byte} is not an Option's tag (0 for None, 1 for Some)"
            ),
            Reason::BadChar => f.write_str("the bytes of a char are not one UTF-8 character"),
            Reason::BadUtf8 => f.write_str("a string is not valid UTF-8"),
            Reason::TooDeep => write!(
                f,
                "values nest more than {MAX_DEPTH} levels deep, the codec's limit"
            ),
            Reason::TooLong { len, remaining } => write!(
                f,
                "a sequence or map declares {len} elements, but only {remaining} bytes remain \
                 and at most {MAX_EMPTY_ELEMENTS} elements may take no bytes"
            ),
            Reason::TooManyEmpty => write!(
                f,
                "more than {MAX_EMPTY_ELEMENTS} elements that take no bytes (such as `()`) in \
                 one message, the codec's limit"
            ),
            Reason::NotSelfDescribing(method) => write!(
                f,
                "the codec is not self-describing, so it cannot decode a type whose shape is \
                 only known from the data (it called `{method}`): `#[serde(untagged)]`, \
                 `#[serde(flatten)]`, internally tagged enums and `serde_json::Value` are such \
                 types; give the type a fixed shape"
            ),
            Reason::LengthUnknown => f.write_str(
                "a sequence or map of unknown length cannot be encoded (`#[serde(flatten)]` \
                 makes one): the codec writes each length before the elements",
            ),
            Reason::BufferFull => f.write_str("the value does not fit in the buffer"),
        }
    }
}

impl Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.reason.fmt(f)
    }
}

impl std::error::Error for Fault {}

impl serde::de::Error for Fault {
    #[cold]
    fn custom<T: Display>(message: T) -> Self {
        Fault::new(Reason::Custom(message.to_string()))
    }
}

impl serde::ser::Error for Fault {
    #[cold]
    fn custom<T: Display>(message: T) -> Self {
        Fault::new(Reason::Custom(message.to_string()))
    }
}
