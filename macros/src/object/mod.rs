//! `#[manager_object]`: a type's `impl` block served by a manager. `ast` sorts the block's
//! functions into constructors, exposed methods and the rest, `valid` checks the exposed ones
//! (every error at the user's tokens), and `expand` writes the proxy and the server's dispatch.

pub mod ast;
pub mod expand;
pub mod valid;
