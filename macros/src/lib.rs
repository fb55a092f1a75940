//! The procedural macros of `multiproc`: `#[process_task]`, `task!` and `#[manager_object]`.
//!
//! Each macro is a small pipeline: `ast` parses the user's tokens, `valid` checks them
//! (every error points at the offending tokens), and `expand` writes the code. Nothing here
//! panics on bad input; a mistake becomes a compile error at the user's tokens.

#![warn(missing_docs)]

mod ast;
mod builder;
mod expand;
mod object;
mod valid;

use proc_macro::TokenStream;

/// Makes a function (or an `impl Run for MyType` block) a task that can run in another process.
///
/// The function stays an ordinary function; a marker type named after it implements
/// `multiproc::task::Task`, and the task is registered under the function's module path and name,
/// so that another process can run it by name. Parameters and the result must be owned serde
/// types; `#[default(expr)]` on a parameter lets a call leave it out. References, generics,
/// `async` and `self` on a free function are refused with a message that says why. In a pool's
/// chunks, each parameter or result that is also plain old data (`bytemuck::Pod`) travels as its
/// bytes, chosen at compile time.
///
/// Runnable examples are on the re-export, `multiproc::process_task` (a procedural-macro crate
/// cannot run doctests that use the runtime crate).
#[proc_macro_attribute]
pub fn process_task(attr: TokenStream, item: TokenStream) -> TokenStream {
    ast::TaskItem::parse(attr.into(), item.into())
        .and_then(|item| valid::task_item(&item).map(|()| expand::task_item(&item)))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Names a task, and optionally binds its arguments: `task!(f)` is the unbound task (Python's
/// `target=f`, a `multiproc::TaskRef`); `task!(f, x, y)`, `task!(f, a = x, b = y)` and
/// `task!(f, x, b = y)` bind it (a `multiproc::Call`), positional arguments first, then by name
/// (Python's `kwargs=`). Leaving a parameter without a default unbound gives a
/// `multiproc::Partial` (Python's `functools.partial`): `pool.map(task!(pow, exp = 3), bases)`
/// maps over the one parameter left.
///
/// An unknown name, a name given twice or too many positional arguments is a compile error at
/// the caller's tokens; a missing argument is one where the partial is used as a call, and a map
/// over a partial that leaves more than one parameter unbound is one that names them. Runnable
/// examples are on the re-export, `multiproc::task`.
#[proc_macro]
pub fn task(input: TokenStream) -> TokenStream {
    syn::parse::<ast::TaskCall>(input)
        .and_then(|call| valid::task_call(&call).map(|()| expand::task_call(&call)))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Serves a type from a manager (Python's `BaseManager.register`): on the type's `impl` block, it
/// registers the constructors (`pub fn`s returning `Self`) and the exposed methods (`pub fn`s
/// taking `&self` or `&mut self`) by name, and generates `<Type>Proxy`, whose methods call them
/// in the manager and return `Result<R, ManagerError>`. Private functions are not exposed;
/// generic, `async` or by-value-`self` `pub` methods, and parameters or results that are
/// references, are refused with a message that says why.
///
/// Runnable examples are on the re-export, `multiproc::managers::manager_object`.
#[proc_macro_attribute]
pub fn manager_object(attr: TokenStream, item: TokenStream) -> TokenStream {
    object::ast::ObjectImpl::parse(attr.into(), item.into())
        .and_then(|object| {
            object::valid::object_impl(&object).map(|()| object::expand::object_impl(&object))
        })
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
