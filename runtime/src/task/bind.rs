//! The pieces `task!` binds arguments with, checked by the compiler.
//!
//! For each task, `#[process_task]` generates a builder with one type parameter per parameter of
//! the function, each [`Unset`] or [`Set`]. `task!(f, x, b = y)` sets the positional arguments
//! through [`PositionalArg`] and the named ones through a method named after the parameter, then
//! finishes the call. The traits here carry the messages the compiler shows when a call is wrong:
//! an argument given twice, too many positional arguments; a missing argument is reported through
//! a trait the macro generates for that parameter, so that the message can name it.

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
