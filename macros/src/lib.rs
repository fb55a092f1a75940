//! The procedural macros of `multiproc`: `#[process_task]` and `task!`.
//!
//! Each macro is a small pipeline: `ast` parses the user's tokens, `valid` checks them
//! (every error points at the offending tokens), and `expand` writes the code. Nothing here
//! panics on bad input; a mistake becomes a compile error at the user's tokens.

#![warn(missing_docs)]

mod ast;
mod expand;
mod valid;

use proc_macro::TokenStream;

/// Makes a function (or an `impl Run for MyType` block) a task that can run in another process.
///
/// See the `multiproc` crate for the forms it accepts. Parameters and the result must be serde
/// types; in a pool's chunks, each one that is also plain old data (`bytemuck::Pod`) travels as
/// its bytes, chosen at compile time (`multiproc::task::pack`).
#[proc_macro_attribute]
pub fn process_task(attr: TokenStream, item: TokenStream) -> TokenStream {
    ast::TaskItem::parse(attr.into(), item.into())
        .and_then(|item| valid::task_item(&item).map(|()| expand::task_item(&item)))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Names a task, and optionally binds its arguments: `task!(f)`, `task!(f, x, y)`,
/// `task!(f, a = x, b = y)`, `task!(f, x, b = y)`.
#[proc_macro]
pub fn task(input: TokenStream) -> TokenStream {
    syn::parse::<ast::TaskCall>(input)
        .and_then(|call| valid::task_call(&call).map(|()| expand::task_call(&call)))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
