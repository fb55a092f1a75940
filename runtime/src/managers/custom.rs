//! Objects of the user's own types served by a manager (Python's `BaseManager.register`):
//! `#[manager_object]` on a type's `impl` block registers the type's constructors and `pub`
//! methods by name, here, and generates a typed proxy that calls them through
//! [`ObjectHandle`]. The server is the same program, so it finds a type by its name in the
//! registry that `inventory` fills at link time, as it finds tasks.

use super::client::Handle;
use super::protocol::{Bytes, Op};
use super::{Manager, ManagerError, ServerError};
use crate::task::catch_panic;
use crate::wire::{self, TaskFailure};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Why the server could not run a constructor or a method of a served type: the name is not
/// one the type exposes (Python's "method is not exposed"), the arguments do not decode, or the
/// result does not encode.
#[derive(Debug)]
pub enum CallError {
    /// No constructor or exposed method of that name.
    NoSuchMethod,
    /// The arguments did not decode as the method's parameters.
    BadArguments(String),
    /// The method's result did not encode.
    BadResult(String),
}

/// A type a manager can serve; `#[manager_object]` implements it, users do not. It is what
/// Python's `BaseManager.register(typeid, callable, exposed=..)` records: how to build one, and
/// the names a proxy may call.
pub trait Served: Sized + 'static {
    /// The registered name: the type's module path and name.
    const NAME: &'static str;

    /// Runs the constructor `constructor` on its encoded arguments.
    ///
    /// # Errors
    ///
    /// [`CallError`] if there is no such constructor or the arguments do not decode.
    fn construct(constructor: &str, args: &[u8]) -> Result<Self, CallError>;

    /// Runs the exposed method `method` on its encoded arguments and encodes its result.
    ///
    /// # Errors
    ///
    /// [`CallError`] if there is no such method, the arguments do not decode or the result
    /// does not encode.
    fn call(&mut self, method: &str, args: &[u8]) -> Result<Bytes, CallError>;
}

/// Decodes a constructor's or a method's arguments, for the generated code.
///
/// # Errors
///
/// [`CallError::BadArguments`] if they are not an `A`.
pub fn decode_args<A: DeserializeOwned>(args: &[u8]) -> Result<A, CallError> {
    wire::decode(args).map_err(|e| CallError::BadArguments(e.to_string()))
}

/// Encodes a method's result, for the generated code.
///
/// # Errors
///
/// [`CallError::BadResult`] if it does not encode.
pub fn encode_output<R: Serialize>(output: &R) -> Result<Bytes, CallError> {
    wire::encode(output).map_err(|e| CallError::BadResult(e.to_string()))
}

/// One served object in the server's table, whatever its type.
pub(crate) trait DynServed {
    fn type_name(&self) -> &'static str;
    fn call(&mut self, method: &str, args: &[u8]) -> Result<Bytes, CallError>;
}

impl<T: Served> DynServed for T {
    fn type_name(&self) -> &'static str {
        T::NAME
    }

    fn call(&mut self, method: &str, args: &[u8]) -> Result<Bytes, CallError> {
        Served::call(self, method, args)
    }
}

/// A served object in the table.
pub(crate) type Custom = Box<dyn DynServed>;

/// A registered type (an entry of Python's `BaseManager._registry`): its name and how to build
/// one; `#[manager_object]` submits one per type.
pub struct ObjectEntry {
    name: &'static str,
    construct: fn(&str, &[u8]) -> Result<Custom, CallError>,
}

inventory::collect!(ObjectEntry);

impl ObjectEntry {
    /// The entry of type `T`.
    pub const fn of<T: Served>() -> Self {
        ObjectEntry {
            name: T::NAME,
            construct: |constructor, args| Ok(Box::new(T::construct(constructor, args)?)),
        }
    }
}

/// The registered type `name`. Two entries cannot share a name: it is the type's path, and a
/// second `#[manager_object]` on one type is a conflicting `Served` impl, a compile error.
fn lookup(name: &str) -> Option<&'static ObjectEntry> {
    static TABLE: OnceLock<HashMap<&'static str, &'static ObjectEntry>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        inventory::iter::<ObjectEntry>
            .into_iter()
            .map(|entry| (entry.name, entry))
            .collect()
    });
    table.get(name).copied()
}

/// The server's answer to a refused or panicked call of `method`.
fn refusal(kind: &str, method: &str, error: CallError) -> ServerError {
    match error {
        CallError::NoSuchMethod => ServerError::NoSuchMethod {
            kind: kind.to_owned(),
            method: method.to_owned(),
        },
        CallError::BadArguments(reason) => ServerError::Malformed {
            reason: format!("the arguments of `{method}` of `{kind}`: {reason}"),
        },
        CallError::BadResult(reason) => ServerError::Malformed {
            reason: format!("the result of `{method}` of `{kind}`: {reason}"),
        },
    }
}

fn panicked(method: &str, failure: TaskFailure) -> ServerError {
    let (message, location) = match failure {
        TaskFailure::Panicked {
            message, location, ..
        } => (message, location),
        other => (other.to_string(), None),
    };
    ServerError::Panicked {
        method: method.to_owned(),
        message,
        location,
    }
}

/// Builds an object of the registered type `type_name` with its constructor `constructor`.
pub(crate) fn construct(
    type_name: &str,
    constructor: &str,
    args: &[u8],
) -> Result<Custom, ServerError> {
    let entry = lookup(type_name).ok_or_else(|| ServerError::NoSuchType {
        name: type_name.to_owned(),
    })?;
    catch_panic(|| (entry.construct)(constructor, args))
        .map_err(|failure| panicked(constructor, failure))?
        .map_err(|e| refusal(type_name, constructor, e))
}

/// Runs `op` on a served object: a method call of its own type; any other operation comes back
/// as `Err`. A panic in the method is the caller's error; the object stays in the table as the
/// method left it.
pub(crate) fn apply(object: &mut Custom, op: Op) -> Result<Result<Bytes, ServerError>, Op> {
    let kind = object.type_name();
    match op {
        Op::CallMethod {
            type_name,
            method,
            args,
        } if type_name == kind => Ok(catch_panic(|| object.call(&method, &args))
            .map_err(|failure| panicked(&method, failure))
            .and_then(|answer| answer.map_err(|e| refusal(kind, &method, e)))),
        other => Err(other),
    }
}

/// The handle a generated proxy holds (Python's `BaseProxy` token): the object's manager and
/// number. Its `Serialize` and
/// `Deserialize` are the handle's, so a proxy travels to tasks and into managed containers as
/// the same object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectHandle {
    handle: Handle,
}

impl ObjectHandle {
    /// Makes an object of `T` in `manager` with its constructor `constructor`.
    ///
    /// # Errors
    ///
    /// The manager gone or shut down, arguments that do not encode, or the server's refusal
    /// (a panic in the constructor among them).
    pub fn create<T: Served, A: Serialize>(
        manager: &Manager,
        constructor: &'static str,
        args: &A,
    ) -> Result<Self, ManagerError> {
        let op = Op::NewObject {
            type_name: Cow::Borrowed(T::NAME),
            constructor: Cow::Borrowed(constructor),
            args: wire::encode(args)?,
        };
        let handle = manager.create(&op)?;
        Ok(ObjectHandle { handle })
    }

    /// Calls the method `method` of the served `T` with `args`, and decodes its result.
    ///
    /// # Errors
    ///
    /// As [`create`](ObjectHandle::create), and [`ServerError::NoSuchMethod`] if the object
    /// has no such method, [`ServerError::WrongKind`] if it is not a `T`.
    pub fn call<T: Served, A: Serialize, R: DeserializeOwned>(
        &self,
        method: &'static str,
        args: &A,
    ) -> Result<R, ManagerError> {
        let op = Op::CallMethod {
            type_name: Cow::Borrowed(T::NAME),
            method: Cow::Borrowed(method),
            args: wire::encode(args)?,
        };
        self.handle.call(&op)
    }

    /// Writes `name { manager, object }`, for a proxy's `Debug`.
    ///
    /// # Errors
    ///
    /// The formatter's.
    pub fn debug(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(name)
            .field("manager", &self.handle.manager.pid)
            .field("object", &self.handle.obj)
            .finish()
    }
}
