//! Tasks: what `#[process_task]` makes of a function, and the values that name one to run.
//!
//! A task is a zero-sized marker type (named after the function) that implements [`Task`]: it
//! knows its registered name, its argument struct and its output type. [`TaskRef`] is the task
//! with no arguments bound (`task!(f)`, Python's `target=f`); [`Call`] is the task bound to its
//! arguments (`task!(f, x, y = z)`, or `TaskRef::bind`), ready to run in another process;
//! [`Partial`] is the task with some arguments bound and one left for each item of a map
//! (`task!(f, y = z)`, Python's `functools.partial`), a [`MapTask`].
//! Anything a [`Process`](crate::Process) can run implements [`Target`].

pub(crate) mod bind;
pub(crate) mod pack;
pub(crate) mod panic;
mod partial;
pub(crate) mod registry;

pub(crate) use panic::catch_panic;
pub use partial::{MapTask, Partial};

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;

/// A function made runnable in another process by `#[process_task]`.
///
/// The macro implements this for a marker type named after the function; users do not implement
/// it by hand. Python needs no such trait: it pickles a function by its qualified name, which
/// [`NAME`](Task::NAME) is here.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use multiproc::task::Task;
///
/// #[process_task]
/// fn shout(word: String) -> String {
///     word.to_uppercase()
/// }
///
/// fn name_of<T: Task>(_: multiproc::TaskRef<T>) -> &'static str {
///     T::NAME
/// }
///
/// assert!(name_of(task!(shout)).ends_with("::shout"));
/// ```
pub trait Task: Sized + 'static {
    /// The registered name: the function's module path and name, e.g. `my_crate::jobs::square`.
    const NAME: &'static str;
    /// The argument struct, with one field per parameter, named after the parameters.
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// What the function returns.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Calls the function with its arguments.
    fn call(args: Self::Args) -> Self::Output;

    /// Appends the arguments to a pool's chunk. `#[process_task]` packs each plain-old-data
    /// parameter as its bytes and the others in the wire format (see `task/pack.rs`); by default the
    /// whole struct goes in the wire format.
    fn pack_args(args: &Self::Args, out: &mut Vec<u8>) -> Result<(), crate::wire::CodecError> {
        pack::Layout::put(pack::Serde, args, out)
    }

    /// Reads arguments written by [`pack_args`](Task::pack_args) from the front of `input`.
    fn unpack_args(input: &mut &[u8]) -> Result<Self::Args, crate::wire::CodecError> {
        pack::Layout::take(pack::Serde, input)
    }

    /// Appends an output to a chunk's results, as [`pack_args`](Task::pack_args) does arguments.
    fn pack_output(
        output: &Self::Output,
        out: &mut Vec<u8>,
    ) -> Result<(), crate::wire::CodecError> {
        pack::Layout::put(pack::Serde, output, out)
    }

    /// Reads an output written by [`pack_output`](Task::pack_output) from the front of `input`.
    fn unpack_output(input: &mut &[u8]) -> Result<Self::Output, crate::wire::CodecError> {
        pack::Layout::take(pack::Serde, input)
    }

    /// Reads `count` outputs written by [`pack_output`](Task::pack_output) one after another
    /// onto the end of `out`: a chunk whose calls all succeeded. `#[process_task]` reads
    /// plain-old-data outputs with one copy loop.
    fn unpack_outputs(
        input: &mut &[u8],
        count: usize,
        out: &mut Vec<Self::Output>,
    ) -> Result<(), crate::wire::CodecError> {
        pack::Layout::take_many(pack::Serde, input, count, out)
    }
}

/// A task that can be called with the positional arguments `A`, a tuple (Python's `args=(..)`).
///
/// `#[process_task]` implements it for the full parameter tuple and for every shorter tuple that
/// leaves off only parameters with a `#[default]`.
#[diagnostic::on_unimplemented(
    message = "task `{Self}` cannot be called with positional arguments of type `{A}`",
    label = "these arguments do not match the task's parameters",
    note = "pass the parameters in order as a tuple, e.g. `(x,)` for one; parameters with `#[default]` may be left off the end"
)]
pub trait TakesArgs<A>: Task {
    /// Builds the argument struct from the tuple, filling in defaults.
    fn args_from(args: A) -> Self::Args;
}

/// A task of exactly one argument, as `Pool::map` needs (Python's `map(f, items)`).
#[diagnostic::on_unimplemented(
    message = "task `{Self}` does not take exactly one argument",
    label = "`map` needs a one-argument task",
    note = "for a task of several parameters, bind all but one with `task!(f, name = value, ..)`, or pass tuples to `starmap`"
)]
pub trait OneArg: Task {
    /// The type of the one argument.
    type Arg;
    /// Builds the argument struct from the one argument.
    fn args_from_one(arg: Self::Arg) -> Self::Args;
}

/// A user type whose [`run`](Run::run) is a process body: the tutorials'
/// `class MyProcess(Process)` with `def run(self)`.
///
/// Put `#[process_task]` on the `impl Run for MyType` block; then `Process::new(my_value)` runs
/// `my_value.run()` in a child process. The value travels to the child, so it must be serde.
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Quitter {
///     code: i32,
/// }
///
/// #[process_task]
/// impl Run for Quitter {
///     fn run(self) {
///         multiproc::exit(self.code)
///     }
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let p = Process::new(Quitter { code: 4 }).name("quitter").start()?;
/// assert!(p.join().is_err());
/// assert_eq!(p.exitcode(), Some(4));
/// # Ok(())
/// # }
/// ```
pub trait Run: Serialize + DeserializeOwned + Send + 'static {
    /// The body of the process (Python's `Process.run`).
    fn run(self);
}

/// Something a [`Process`](crate::Process) can run in a child: a [`Call`], a [`TaskRef`] of a
/// task whose parameters all have defaults, a [`Run`] value, or a closure (Python's `target=`).
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
/// use multiproc::Target;
///
/// #[process_task]
/// fn seven(#[default(7)] n: u8) -> u8 {
///     n
/// }
///
/// // Any target can be handed to a function that starts it.
/// fn run_in_child<C: Target>(target: C) -> multiproc::Result<C::Output> {
///     Process::new(target).start()?.join()
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// assert_eq!(run_in_child(task!(seven))?, 7); // every parameter has a default
/// assert_eq!(run_in_child(task!(seven, 8))?, 8);
/// # Ok(())
/// # }
/// ```
pub trait Target: Send + 'static {
    /// What the child sends back to `join`.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The registered task name, or `None` for a closure (which only the fork start method can run).
    fn task_name(&self) -> Option<&'static str>;
    /// Runs the body. Called in the child process.
    fn invoke(self) -> Self::Output;
    /// The task's arguments encoded for a child that runs it by name, in a process that did not
    /// inherit this one's memory; `None` for a closure.
    #[doc(hidden)]
    fn encode_args(&self) -> Option<Result<Vec<u8>, crate::wire::CodecError>> {
        None
    }
}

/// Registers a crate-internal task whose arguments are the value itself (a pool's worker, a
/// manager's server), and makes the value a [`Target`], so `Process::new(value)` starts it by name
/// under every start method.
macro_rules! internal_task {
    ($ty:ty) => {
        inventory::submit! { $crate::task::registry::TaskEntry::of::<$ty>() }

        impl $crate::task::Target for $ty {
            type Output = ();

            fn task_name(&self) -> Option<&'static str> {
                Some(<$ty as $crate::task::Task>::NAME)
            }

            fn invoke(self) {
                <$ty as $crate::task::Task>::call(self)
            }

            fn encode_args(&self) -> Option<Result<Vec<u8>, $crate::wire::CodecError>> {
                Some($crate::wire::encode(self))
            }
        }
    };
}
pub(crate) use internal_task;

/// The task `T` with no arguments bound: what `task!(f)` gives.
///
/// Bind arguments with [`TaskRef::bind`] or `Process::args`; pass it unbound to `Pool::map`
/// (Python's `target=f` and `pool.map(f, ..)`).
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn add(a: u32, b: u32) -> u32 {
///     a + b
/// }
///
/// let unbound = task!(add);
/// assert!(unbound.name().ends_with("::add"));
/// let call = unbound.bind((2, 3));
/// assert_eq!(call.run(), 5);
/// ```
pub struct TaskRef<T>(PhantomData<fn() -> T>);

impl<T: Task> TaskRef<T> {
    /// The task `T`.
    pub const fn new() -> Self {
        TaskRef(PhantomData)
    }

    /// The registered name of the task.
    pub fn name(self) -> &'static str {
        T::NAME
    }

    /// Binds positional arguments (a tuple), giving a call ready to run.
    pub fn bind<A>(self, args: A) -> Call<T>
    where
        T: TakesArgs<A>,
    {
        Call::new(T::args_from(args))
    }
}

impl<T: Task> Default for TaskRef<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for TaskRef<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TaskRef<T> {}

impl<T: Task> fmt::Debug for TaskRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskRef({})", T::NAME)
    }
}

impl<T: Task + TakesArgs<()>> Target for TaskRef<T> {
    type Output = T::Output;

    fn task_name(&self) -> Option<&'static str> {
        Some(T::NAME)
    }

    fn invoke(self) -> T::Output {
        T::call(T::args_from(()))
    }

    fn encode_args(&self) -> Option<Result<Vec<u8>, crate::wire::CodecError>> {
        Some(crate::wire::encode(&T::args_from(())))
    }
}

/// What [`Pool::apply`](crate::Pool::apply) and its kin take: a bound [`Call`], or the
/// [`TaskRef`] of a task without parameters, as `task!(f)` gives it (Python's
/// `pool.apply(f)`).
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn answer() -> u32 {
///     42
/// }
///
/// #[process_task]
/// fn double(x: u32) -> u32 {
///     2 * x
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let pool = Pool::new(1)?;
/// assert_eq!(pool.apply(task!(answer))?, 42);
/// assert_eq!(pool.apply(task!(double, 4))?, 8);
/// # Ok(())
/// # }
/// ```
pub trait IntoCall {
    /// The task called.
    type Task: Task;

    /// The call, with its arguments bound.
    fn into_call(self) -> Call<Self::Task>;
}

impl<T: Task> IntoCall for Call<T> {
    type Task = T;

    fn into_call(self) -> Call<T> {
        self
    }
}

impl<T: Task + TakesArgs<()>> IntoCall for TaskRef<T> {
    type Task = T;

    fn into_call(self) -> Call<T> {
        self.bind(())
    }
}

/// The task `T` bound to its arguments: what `task!(f, ..)` gives (Python's `target=f` with
/// `args=` and `kwargs=`).
///
/// # Examples
///
/// ```
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn area(width: u32, height: u32) -> u32 {
///     width * height
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let call = task!(area, width = 3, height = 4);
/// assert_eq!((call.args().width, call.args().height), (3, 4));
/// let in_child = Process::new(call).start()?;
/// assert_eq!(in_child.join()?, 12);
/// assert_eq!(task!(area, 5, 6).run(), 30); // or run here, in this process
/// # Ok(())
/// # }
/// ```
pub struct Call<T: Task> {
    args: T::Args,
}

impl<T: Task> Call<T> {
    /// Binds the task to its argument struct.
    pub fn new(args: T::Args) -> Self {
        Call { args }
    }

    /// The bound arguments.
    pub fn args(&self) -> &T::Args {
        &self.args
    }

    /// The bound arguments, taken out of the call.
    pub(crate) fn into_args(self) -> T::Args {
        self.args
    }

    /// Runs the task here, in this process.
    pub fn run(self) -> T::Output {
        T::call(self.args)
    }
}

impl<T: Task> Clone for Call<T>
where
    T::Args: Clone,
{
    fn clone(&self) -> Self {
        Call::new(self.args.clone())
    }
}

impl<T: Task> fmt::Debug for Call<T>
where
    T::Args: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("task", &T::NAME)
            .field("args", &self.args)
            .finish()
    }
}

impl<T: Task> Target for Call<T> {
    type Output = T::Output;

    fn task_name(&self) -> Option<&'static str> {
        Some(T::NAME)
    }

    fn invoke(self) -> T::Output {
        self.run()
    }

    fn encode_args(&self) -> Option<Result<Vec<u8>, crate::wire::CodecError>> {
        Some(crate::wire::encode(&self.args))
    }
}

/// A closure run as a process body; see [`Process::from_fn`](crate::Process::from_fn).
pub struct FnTarget<F>(pub(crate) F);

impl<F, R> Target for FnTarget<F>
where
    F: FnOnce() -> R + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    type Output = R;

    fn task_name(&self) -> Option<&'static str> {
        None
    }

    fn invoke(self) -> R {
        (self.0)()
    }
}
