//! The pieces `task!` binds arguments with, checked by the compiler.
//!
//! For each task, `#[process_task]` generates a builder with one type parameter per parameter of
//! the function, each [`Unset`] or [`Set`]. `task!(f, x, b = y)` sets the positional arguments
//! through [`PositionalArg`] and the named ones through a method named after the parameter, then
//! finishes the call. The traits here carry the messages the compiler shows when a call is wrong:
//! an argument given twice, too many positional arguments; a missing argument is reported through
//! a trait the macro generates for that parameter, so that the message can name it.
//!
//! A builder whose parameters without a default are all set finishes as a [`Call`]; one that
//! leaves some unset is a [`Partial`] (Python's `functools.partial`), which the compiler decides
//! through [`Status`]. A partial with exactly one such parameter unset is a [`PartialArgs`], which
//! `Pool::map` fills with each item; the macro's check of that names the parameters left unset
//! through the markers of [`Builder::Holes`].

use super::{Call, Partial, Task};

/// A parameter not given yet.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unset;

/// A parameter given the value `T`.
#[derive(Debug, Clone, Copy)]
pub struct Set<T>(pub T);

/// The state of a parameter that has not been given: named setters require it.
#[diagnostic::on_unimplemented(
    message = "this argument is given twice",
    label = "the task's argument is set more than once",
    note = "each parameter takes one value: positionally or by name, not both"
)]
pub trait NotGiven {}

impl NotGiven for Unset {}

/// The value of a parameter with a default: the given one, or the default.
pub trait OrDefault<T> {
    /// The given value, or `default()` when none was given.
    fn or_default(self, default: impl FnOnce() -> T) -> T;
}

impl<T> OrDefault<T> for Unset {
    fn or_default(self, default: impl FnOnce() -> T) -> T {
        default()
    }
}

impl<T> OrDefault<T> for Set<T> {
    fn or_default(self, _default: impl FnOnce() -> T) -> T {
        self.0
    }
}

/// Sets the `I`-th parameter of a task's builder, for `task!(f, x, y)`.
#[diagnostic::on_unimplemented(
    message = "too many positional arguments for this task",
    label = "the task has no parameter at position {I}"
)]
pub trait PositionalArg<const I: usize> {
    /// The parameter's type.
    type Value;
    /// The builder with that parameter set.
    type Next;
    /// Sets the parameter.
    fn set(self, value: Self::Value) -> Self::Next;
}

/// Whether a builder has every parameter without a default set: [`Complete`] or
/// [`Incomplete`], folded over its parameters with [`Status::And`].
pub trait Status {
    /// `Self` and `R`: complete only if both are.
    type And<R: Status>: Status;
}

/// Every parameter without a default is set: `task!` gives a [`Call`](crate::Call).
#[derive(Debug)]
pub enum Complete {}

/// Some parameter without a default is not set: `task!` gives a [`Partial`](crate::Partial).
#[derive(Debug)]
pub enum Incomplete {}

impl Status for Complete {
    type And<R: Status> = R;
}

impl Status for Incomplete {
    type And<R: Status> = Incomplete;
}

/// The state of one parameter of a builder: [`Unset`] or [`Set`].
pub trait Slot {
    /// [`Complete`] if set, [`Incomplete`] if not.
    type Done: Status;
    /// `M` (the parameter's marker) if not set, `()` if set: a builder's tuple of these names
    /// the parameters it leaves unbound.
    type Mark<M>;
}

impl Slot for Unset {
    type Done = Incomplete;
    type Mark<M> = M;
}

impl<T> Slot for Set<T> {
    type Done = Complete;
    type Mark<M> = ();
}

/// The builder of a task's arguments, which `#[process_task]` generates for `task!`.
pub trait Builder: Sized {
    /// The task whose arguments it binds.
    type Task: Task;
    /// Whether every parameter without a default is set.
    type Status: Status;
    /// One place per parameter: its marker if it is required and not set, `()` otherwise.
    type Holes;
}

/// A builder with every parameter without a default set.
pub trait Finished: Builder {
    /// The call, with the defaults filled in.
    fn complete(self) -> Call<Self::Task>;
}

/// A builder with exactly one parameter without a default left unset: the `Item` a map fills
/// it with.
pub trait PartialArgs: Builder {
    /// The type of the parameter left unset.
    type Item;
    /// The task's arguments: the bound ones (cloned), the defaults, and `item`.
    fn args_with(&self, item: Self::Item) -> <Self::Task as Task>::Args;
}

/// What `task!(f, ..)` gives for its builder's [`Status`]: a [`Call`] or a [`Partial`].
pub trait Finish<B> {
    /// `Call<B::Task>` or `Partial<B>`.
    type Output;
    /// Turns the builder into the call or the partial.
    fn finish(builder: B) -> Self::Output;
}

impl<B: Finished> Finish<B> for Complete {
    type Output = Call<B::Task>;

    fn finish(builder: B) -> Call<B::Task> {
        builder.complete()
    }
}

impl<B: Builder> Finish<B> for Incomplete {
    type Output = Partial<B>;

    fn finish(builder: B) -> Partial<B> {
        Partial::new(builder)
    }
}

/// The end of `task!(f, ..)`: the call if every required argument is given, else the partial.
pub fn finish<B: Builder>(builder: B) -> <B::Status as Finish<B>>::Output
where
    B::Status: Finish<B>,
{
    <B::Status as Finish<B>>::finish(builder)
}

/// A bound value, cloned for each call of a map over a partial.
pub trait Bound<T> {
    /// A copy of the value.
    fn bound(&self) -> T;
}

impl<T: Clone> Bound<T> for Set<T> {
    fn bound(&self) -> T {
        self.0.clone()
    }
}

/// A parameter with a default in a map over a partial: a copy of the bound value, or the
/// default.
pub trait BoundOr<T> {
    /// A copy of the value given, or `default()` when none was given.
    fn bound_or(&self, default: impl FnOnce() -> T) -> T;
}

impl<T> BoundOr<T> for Unset {
    fn bound_or(&self, default: impl FnOnce() -> T) -> T {
        default()
    }
}

impl<T: Clone> BoundOr<T> for Set<T> {
    fn bound_or(&self, _default: impl FnOnce() -> T) -> T {
        self.0.clone()
    }
}
