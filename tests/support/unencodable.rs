//! An item type one of whose values cannot be encoded, for the tests of encode errors.

use serde::{Deserialize, Serialize, Serializer};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum Item {
    Good(u32),
    #[serde(skip_deserializing)]
    Bad(#[serde(serialize_with = "refuse")] u32),
}

/// A serializer that always fails, as for a value that cannot be encoded.
fn refuse<S: Serializer>(_: &u32, _: S) -> Result<S::Ok, S::Error> {
    Err(serde::ser::Error::custom(
        "this value refuses to be encoded",
    ))
}
