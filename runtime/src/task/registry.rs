//! The registry of tasks by name, filled by `#[process_task]` through `inventory`.
//!
//! A child process that did not inherit the parent's memory (and a pool worker, which receives
//! many tasks) runs a task by its name: it looks the name up here and calls the entry's invoke
//! function on the encoded arguments. Two tasks registered under one name are an error the first
//! time the registry is used, never a silent pick.

use super::{catch_panic, Task};
use crate::wire;
use crate::wire::TaskFailure;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Decodes the arguments, calls the task and encodes its output.
type Invoke = fn(&[u8]) -> Result<Vec<u8>, TaskFailure>;

/// Runs the task on up to `calls` argument structs packed at the front of the input, until the
/// outcomes appended to the output take `max_bytes`; returns how many ran.
type InvokeBatch = fn(&mut &[u8], u32, usize, &mut Vec<u8>) -> u32;

/// One registered task: its name and how to call it on encoded arguments.
pub struct TaskEntry {
    name: &'static str,
    invoke: Invoke,
    invoke_batch: InvokeBatch,
    /// The types the task takes and returns, which a cluster's task fingerprint covers.
    #[cfg(feature = "cluster")]
    signature: fn() -> String,
    /// Moves past the packed arguments of some calls, which a cluster's retry skips.
    #[cfg(feature = "cluster")]
    skip: fn(&mut &[u8], u32) -> Result<(), wire::CodecError>,
}

inventory::collect!(TaskEntry);

impl TaskEntry {
    /// The entry of task `T`; `#[process_task]` submits one per task.
    pub const fn of<T: Task>() -> Self {
        TaskEntry {
            name: T::NAME,
            invoke: invoke::<T>,
            invoke_batch: invoke_batch::<T>,
            #[cfg(feature = "cluster")]
            signature: signature::<T>,
            #[cfg(feature = "cluster")]
            skip: skip::<T>,
        }
    }

    /// The argument and output types with their sizes, as this build names them: two builds
    /// whose signatures differ do not read each other's packed values.
    #[cfg(feature = "cluster")]
    pub(crate) fn signature(&self) -> String {
        (self.signature)()
    }

    /// Moves `args` past the packed arguments of its first `calls` calls.
    #[cfg(feature = "cluster")]
    pub(crate) fn skip_args(&self, args: &mut &[u8], calls: u32) -> Result<(), wire::CodecError> {
        (self.skip)(args, calls)
    }

    /// The registered name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the task on arguments encoded with the wire format and returns its encoded output.
    /// A panic in the task is caught and returned as [`TaskFailure::Panicked`].
    pub fn invoke(&self, args: &[u8]) -> Result<Vec<u8>, TaskFailure> {
        (self.invoke)(args)
    }

    /// Runs the task on up to `calls` argument structs packed one after another (with
    /// [`Task::pack_args`]) at the front of `args`, moving `args` past those it reads, and
    /// appends their outcomes to `out` with a [`wire::OutcomeWriter`] (outputs packed with
    /// [`Task::pack_output`]), to be read back with a [`wire::OutcomeReader`]. It stops early,
    /// after at least one call, once the values take `max_bytes`; it returns how many calls ran.
    /// A pool worker runs a chunk of tasks this way, part by part, with no allocation per task.
    /// A panic or an output that cannot be encoded fails only its own call; arguments that do
    /// not decode fail all `calls` from there on (where the next ones start is lost), which then
    /// count as run.
    pub fn invoke_batch(
        &self,
        args: &mut &[u8],
        calls: u32,
        max_bytes: usize,
        out: &mut Vec<u8>,
    ) -> u32 {
        (self.invoke_batch)(args, calls, max_bytes, out)
    }
}

fn invoke_batch<T: Task>(args: &mut &[u8], calls: u32, max_bytes: usize, out: &mut Vec<u8>) -> u32 {
    // A local copy the loop keeps in registers; `args` is moved on once, at the end.
    let mut input = *args;
    let mut outcomes = wire::OutcomeWriter::new(out);
    let mut ran = calls;
    for done in 0..calls {
        match T::unpack_args(&mut input) {
            Ok(one) => outcomes.push(catch_panic(|| T::call(one)), T::pack_output),
            Err(e) => {
                // Where the next arguments start is unknown now: the rest fail too.
                let failure = TaskFailure::Decode(e.detail());
                for _ in done..calls {
                    outcomes.push(Err(failure.clone()), T::pack_output);
                }
                break;
            }
        }
        if outcomes.written() >= max_bytes {
            ran = done + 1;
            break;
        }
    }
    *args = input;
    outcomes.finish();
    ran
}

#[cfg(feature = "cluster")]
fn signature<T: Task>() -> String {
    use std::any::type_name;
    use std::mem::size_of;
    format!(
        "{} ({} bytes) -> {} ({} bytes)",
        type_name::<T::Args>(),
        size_of::<T::Args>(),
        type_name::<T::Output>(),
        size_of::<T::Output>()
    )
}

#[cfg(feature = "cluster")]
fn skip<T: Task>(args: &mut &[u8], calls: u32) -> Result<(), wire::CodecError> {
    for _ in 0..calls {
        T::unpack_args(args)?;
    }
    Ok(())
}

fn invoke<T: Task>(args: &[u8]) -> Result<Vec<u8>, TaskFailure> {
    let args: T::Args = wire::decode(args).map_err(|e| TaskFailure::Decode(e.detail()))?;
    let output = catch_panic(|| T::call(args))?;
    wire::encode(&output).map_err(|e| TaskFailure::Encode(e.detail()))
}

type Table = HashMap<&'static str, &'static TaskEntry>;

/// The table of all registered tasks, or the first name registered twice.
fn table() -> Result<&'static Table, &'static str> {
    static TABLE: OnceLock<Result<Table, &'static str>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let mut table = Table::new();
            for entry in inventory::iter::<TaskEntry> {
                if table.insert(entry.name, entry).is_some() {
                    return Err(entry.name);
                }
            }
            Ok(table)
        })
        .as_ref()
        .map_err(|name| *name)
}

/// Why a task could not be found by name; the crate's error says it as `DuplicateTask` or
/// `UnknownTask`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LookupError {
    /// Two tasks are registered under this name.
    Duplicate(&'static str),
    /// No task is registered under this name.
    Unknown(String),
}

/// The entry registered under `name`.
pub(crate) fn lookup(name: &str) -> Result<&'static TaskEntry, LookupError> {
    let table = table().map_err(LookupError::Duplicate)?;
    table
        .get(name)
        .copied()
        .ok_or_else(|| LookupError::Unknown(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TakesArgs;
    use crate::{process_task, task};

    #[process_task]
    fn triple(x: u32) -> u32 {
        x * 3
    }

    #[process_task]
    fn refuse(reason: String) -> u32 {
        panic!("{reason}")
    }

    fn encoded_args<T: TakesArgs<A>, A>(args: A) -> Vec<u8> {
        wire::encode(&T::args_from(args)).unwrap()
    }

    #[test]
    fn a_task_runs_by_name_on_encoded_arguments() {
        let entry = lookup(task!(triple).name()).unwrap();
        let output = entry.invoke(&encoded_args::<triple, _>((14,))).unwrap();
        assert_eq!(wire::decode::<u32>(&output).unwrap(), 42);
    }

    #[test]
    fn a_panic_and_bad_arguments_are_failures_not_panics() {
        let entry = lookup(task!(refuse).name()).unwrap();
        let args = encoded_args::<refuse, _>(("no".to_string(),));
        assert!(matches!(
            entry.invoke(&args),
            Err(TaskFailure::Panicked { message, .. }) if message == "no"
        ));
        assert!(matches!(
            entry.invoke(&[0xff, 0xff]),
            Err(TaskFailure::Decode(_))
        ));
    }

    /// The values of a batch's outcomes, or the failures' messages.
    fn read_batch(out: &[u8], calls: u32) -> Vec<Result<u32, TaskFailure>> {
        let mut reader = wire::OutcomeReader::new(out).unwrap();
        (0..calls)
            .map(|_| reader.next_outcome(triple::unpack_output).unwrap())
            .collect()
    }

    #[test]
    fn a_batch_stops_once_its_values_fill_the_budget_and_goes_on_from_there() {
        let entry = lookup(task!(triple).name()).unwrap();
        let mut packed = Vec::new();
        for x in 0..10u32 {
            triple::pack_args(&triple::args_from((x,)), &mut packed).unwrap();
        }
        let mut args = &packed[..];
        let mut out = Vec::new();
        // Each output takes 4 bytes: the budget of 10 is passed by the third.
        assert_eq!(entry.invoke_batch(&mut args, 10, 10, &mut out), 3);
        assert_eq!(read_batch(&out, 3), [Ok(0), Ok(3), Ok(6)]);
        out.clear();
        assert_eq!(entry.invoke_batch(&mut args, 7, 1 << 20, &mut out), 7);
        let rest: Vec<_> = (3..10).map(|x| Ok(x * 3)).collect();
        assert_eq!(read_batch(&out, 7), rest);
        assert!(args.is_empty());
    }

    #[test]
    fn arguments_that_do_not_decode_fail_every_call_left() {
        let entry = lookup(task!(triple).name()).unwrap();
        let mut out = Vec::new();
        let mut args = &[1u8, 0][..];
        assert_eq!(entry.invoke_batch(&mut args, 4, 1, &mut out), 4);
        let outcomes = read_batch(&out, 4);
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, Err(TaskFailure::Decode(_)))));
    }

    #[test]
    fn an_unknown_name_is_an_error() {
        assert!(matches!(
            lookup("no::such::task"),
            Err(LookupError::Unknown(_))
        ));
    }
}
