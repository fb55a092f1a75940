//! What a proxy and the manager's server say to each other: a [`Request`] in one frame of the
//! crate's wire format (a 64-bit length, then the postcard payload), answered by a [`Reply`] in
//! another. Keys and values travel, and are stored, as their encoded bytes, so the server never
//! needs the proxy's types; a reply's `Ok` holds the operation's result, encoded in turn.

use super::ServerError;
use nix::sys::socket::UnixAddr;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io;
use std::time::Duration;

/// The number of an object in the manager's table.
pub(crate) type ObjId = u64;

/// The object a request that makes a new one, or concerns the manager itself, is sent to.
pub(crate) const MANAGER: ObjId = 0;

/// The longest request frame the server accepts, payload and header.
pub(crate) const MAX_REQUEST: u64 = 1 << 30;

/// The abstract socket address of the server `pid`, started with `token`: random, so that no
/// other process can guess it and listen there first.
pub(crate) fn address(pid: i32, token: [u64; 2]) -> io::Result<UnixAddr> {
    let name = format!("multiproc-manager-{pid}-{:016x}{:016x}", token[0], token[1]);
    UnixAddr::new_abstract(name.as_bytes()).map_err(io::Error::from)
}

/// A timeout as the server takes it: microseconds, rounded up so that a wait never ends early.
pub(crate) fn timeout_micros(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_nanos().div_ceil(1000)).unwrap_or(u64::MAX)
}

/// A value encoded by the wire codec.
pub(crate) type Bytes = Vec<u8>;

/// One request: an operation on one object (a proxy sends `Request<&Op>`, the server reads
/// `Request<Op>`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request<O = Op> {
    pub(crate) obj: ObjId,
    pub(crate) op: O,
}

/// The answer to a request: the operation's result, encoded, or why the server refused.
pub(crate) type Reply = Result<Bytes, ServerError>;

/// The operations, and what each answers (encoded) in the comment after it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    /// A new, empty dict: its `ObjId`.
    NewDict,
    /// A new, empty list: its `ObjId`.
    NewList,
    /// A new namespace holding `value`: its `ObjId`.
    NewNamespace { value: Bytes },
    /// A new, free lock, reentrant or not: its `ObjId`.
    NewLock { reentrant: bool },
    /// A new semaphore of `value`, which a release may not pass if `bounded`: its `ObjId`.
    NewSemaphore { value: u64, bounded: bool },
    /// A new condition, with a lock of its own: its `ObjId`.
    NewCondition,
    /// A new barrier for `parties`: its `ObjId`.
    NewBarrier { parties: u64 },
    /// A new, clear event: its `ObjId`.
    NewEvent,
    /// A new, empty queue: its `ObjId`.
    NewQueue,
    /// A new object of the registered type `type_name`, made by its `constructor`: its
    /// `ObjId`.
    NewObject {
        type_name: Cow<'static, str>,
        constructor: Cow<'static, str>,
        args: Bytes,
    },
    /// Calls `method` of a served object, which must be a `type_name`: the method's result,
    /// `Bytes`.
    CallMethod {
        type_name: Cow<'static, str>,
        method: Cow<'static, str>,
        args: Bytes,
    },
    /// Stop serving once this is answered: `()`.
    Shutdown,
    /// A dict's or list's length: `u64`.
    Len,
    /// Empties a dict or list: `()`.
    Clear,
    /// `Option<Bytes>`, the value replaced.
    DictInsert { key: Bytes, value: Bytes },
    /// `Option<Bytes>`.
    DictGet { key: Bytes },
    /// `Option<Bytes>`, the value removed.
    DictRemove { key: Bytes },
    /// `bool`.
    DictContains { key: Bytes },
    /// `Vec<Bytes>`, in insertion order.
    DictKeys,
    /// `Vec<Bytes>`, in insertion order.
    DictValues,
    /// `Vec<(Bytes, Bytes)>`, in insertion order.
    DictItems,
    /// Inserts each pair in order: `()`.
    DictUpdate { pairs: Vec<(Bytes, Bytes)> },
    /// Removes the entry inserted last: `Option<(Bytes, Bytes)>`.
    DictPop,
    /// Inserts `value` if `key` is absent; the value now there: `Bytes`.
    DictSetDefault { key: Bytes, value: Bytes },
    /// The value and its version (0: absent): `(Option<Bytes>, u64)`.
    DictGetVersioned { key: Bytes },
    /// Sets (or with `None` removes) the value if its version is still `version`: `bool`.
    DictSetIfVersion {
        key: Bytes,
        value: Option<Bytes>,
        version: u64,
    },
    /// Adds (or subtracts) `delta` to the number stored under `key` (absent: zero), wrapping
    /// on overflow: the previous value, `Bytes`.
    DictFetchAdd {
        key: Bytes,
        kind: NumberKind,
        delta: Bytes,
        subtract: bool,
    },
    /// `()`.
    ListPush { value: Bytes },
    /// `()`.
    ListExtend { values: Vec<Bytes> },
    /// `Option<Bytes>`.
    ListGet { index: u64 },
    /// The value replaced: `Bytes`.
    ListSet { index: u64, value: Bytes },
    /// `()`.
    ListInsert { index: u64, value: Bytes },
    /// The value removed: `Bytes`.
    ListRemove { index: u64 },
    /// `Option<Bytes>`.
    ListPop,
    /// `Vec<Bytes>`.
    ListAll,
    /// Waits for the lock, at most `timeout_micros` (`None`: no limit): `Option<Option<i32>>`,
    /// `None` timed out, else the pid of a holder that died, if one did.
    LockAcquire { timeout_micros: Option<u64> },
    /// `()`.
    LockRelease,
    /// `bool`.
    LockIsLocked,
    /// Waits for a unit, at most `timeout_micros`: whether it took one, `bool`.
    SemaphoreAcquire { timeout_micros: Option<u64> },
    /// `()`.
    SemaphoreRelease,
    /// `u64`.
    SemaphoreValue,
    /// Releases the condition's lock and waits for a notify, at most `timeout_micros`, then
    /// takes the lock back: `(bool, Option<i32>)`, whether notified and a dead holder's pid.
    ConditionWait { timeout_micros: Option<u64> },
    /// Wakes up to `n` waits: `()`.
    ConditionNotify { n: u64 },
    /// Waits for the other parties, at most `timeout_micros`: the arrival index, `u64`.
    BarrierWait { timeout_micros: Option<u64> },
    /// `()`.
    BarrierAbort,
    /// `()`.
    BarrierReset,
    /// `(u64, u64, bool)`: parties, waiting, broken.
    BarrierState,
    /// `()`.
    EventSet,
    /// `()`.
    EventClear,
    /// `bool`.
    EventIsSet,
    /// Waits until set, at most `timeout_micros`: whether it is set, `bool`.
    EventWait { timeout_micros: Option<u64> },
    /// `()`.
    QueuePut { value: Bytes },
    /// Waits for an item, at most `timeout_micros`: `Option<Bytes>`, `None` timed out.
    QueueGet { timeout_micros: Option<u64> },
    /// Marks an item done: `()`.
    QueueTaskDone,
    /// Waits until every item put is done: `()`.
    QueueJoin,
    /// The value and its version: `(Bytes, u64)`.
    NamespaceGet,
    /// `()`.
    NamespaceSet { value: Bytes },
    /// Sets the value if its version is still `version`: `bool`.
    NamespaceSetIfVersion { value: Bytes, version: u64 },
}

impl Op {
    /// The operation's name, for errors.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::NewDict => "new_dict",
            Op::NewList => "new_list",
            Op::NewNamespace { .. } => "new_namespace",
            Op::NewLock { .. } => "new_lock",
            Op::NewSemaphore { .. } => "new_semaphore",
            Op::NewCondition => "new_condition",
            Op::NewBarrier { .. } => "new_barrier",
            Op::NewEvent => "new_event",
            Op::NewQueue => "new_queue",
            Op::NewObject { .. } => "new_object",
            Op::CallMethod { .. } => "call_method",
            Op::Shutdown => "shutdown",
            Op::Len => "len",
            Op::Clear => "clear",
            Op::DictInsert { .. } => "insert",
            Op::DictGet { .. } => "get",
            Op::DictRemove { .. } => "remove",
            Op::DictContains { .. } => "contains_key",
            Op::DictKeys => "keys",
            Op::DictValues => "values",
            Op::DictItems => "items",
            Op::DictUpdate { .. } => "update",
            Op::DictPop => "pop",
            Op::DictSetDefault { .. } => "setdefault",
            Op::DictGetVersioned { .. } => "get_versioned",
            Op::DictSetIfVersion { .. } => "set_if_version",
            Op::DictFetchAdd { .. } => "fetch_add",
            Op::ListPush { .. } => "push",
            Op::ListExtend { .. } => "extend",
            Op::ListGet { .. } => "get",
            Op::ListSet { .. } => "set",
            Op::ListInsert { .. } => "insert",
            Op::ListRemove { .. } => "remove",
            Op::ListPop => "pop",
            Op::ListAll => "to_vec",
            Op::LockAcquire { .. } => "acquire",
            Op::LockRelease => "release",
            Op::LockIsLocked => "is_locked",
            Op::SemaphoreAcquire { .. } => "acquire",
            Op::SemaphoreRelease => "release",
            Op::SemaphoreValue => "get_value",
            Op::ConditionWait { .. } => "wait",
            Op::ConditionNotify { .. } => "notify",
            Op::BarrierWait { .. } => "wait",
            Op::BarrierAbort => "abort",
            Op::BarrierReset => "reset",
            Op::BarrierState => "state",
            Op::EventSet => "set",
            Op::EventClear => "clear",
            Op::EventIsSet => "is_set",
            Op::EventWait { .. } => "wait",
            Op::QueuePut { .. } => "put",
            Op::QueueGet { .. } => "get",
            Op::QueueTaskDone => "task_done",
            Op::QueueJoin => "join",
            Op::NamespaceGet => "get",
            Op::NamespaceSet { .. } => "set",
            Op::NamespaceSetIfVersion { .. } => "set_if_version",
        }
    }
}

/// Which number type a `fetch_add` works on: the server decodes the stored value and the delta
/// as that type.
///
/// # Examples
///
/// ```
/// use multiproc::managers::{Number, NumberKind};
///
/// assert_eq!(<i64 as Number>::KIND, NumberKind::I64);
/// assert_eq!(<f32 as Number>::KIND, NumberKind::F32);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NumberKind {
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

/// A number type that [`DictProxy::fetch_add`](super::DictProxy::fetch_add) adds on the
/// server, in one round trip (Python has no such operation: it takes a lock, reads, writes and
/// releases, four round trips).
pub trait Number: Serialize + serde::de::DeserializeOwned + Copy {
    /// What the server decodes the stored value as.
    const KIND: NumberKind;
}

macro_rules! numbers {
    ($($t:ty => $kind:ident),* $(,)?) => {
        $(impl Number for $t {
            const KIND: NumberKind = NumberKind::$kind;
        })*
    };
}

numbers!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32,
    u64 => U64, f32 => F32, f64 => F64);
