//! Parsing: the user's tokens as the structures the other stages work on.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, FnArg, Ident, ItemFn, ItemImpl, Pat, Path, Token, Type};

/// What `#[process_task]` was put on.
pub enum TaskItem {
    /// A free function.
    Function(TaskFn),
    /// An `impl Run for MyType` block.
    RunImpl(ItemImpl),
}

/// A function task: the function (with `#[default]` attributes removed) and its parameters.
pub struct TaskFn {
    pub item: ItemFn,
    pub params: Vec<Param>,
    /// Tokens after `#[process_task`, which must be empty.
    pub attr: TokenStream,
}

/// One parameter of a function task.
pub struct Param {
    pub arg: FnArg,
    /// The parameter's name, when its pattern is a plain name.
    pub ident: Option<Ident>,
    pub ty: Type,
    /// The `#[default(..)]` expression, or the error parsing it.
    pub default: Option<syn::Result<Expr>>,
}

impl Param {
    /// Whether a call may leave this parameter out.
    pub fn is_optional(&self) -> bool {
        self.default.is_some()
    }
}

impl TaskItem {
    pub fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<Self> {
        match syn::parse2::<syn::Item>(item)? {
            syn::Item::Fn(item) => Ok(TaskItem::Function(TaskFn::new(attr, item))),
            syn::Item::Impl(item) if attr.is_empty() => Ok(TaskItem::RunImpl(item)),
            syn::Item::Impl(_) => Err(syn::Error::new_spanned(
                attr,
                "`#[process_task]` takes no arguments",
            )),
            other => Err(syn::Error::new_spanned(
                other,
                "`#[process_task]` goes on a function or on an `impl Run for MyType` block",
            )),
        }
    }
}

impl TaskFn {
    fn new(attr: TokenStream, mut item: ItemFn) -> Self {
        let params = item.sig.inputs.iter_mut().map(Param::take).collect();
        TaskFn { item, params, attr }
    }
}

impl Param {
    /// Reads a parameter, removing its `#[default(..)]` attribute from the function.
    fn take(arg: &mut FnArg) -> Self {
        let (ident, ty, default) = match arg {
            FnArg::Receiver(receiver) => (None, (*receiver.ty).clone(), None),
            FnArg::Typed(typed) => {
                let ident = match &*typed.pat {
                    Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                        Some(pat.ident.clone())
                    }
                    _ => None,
                };
                let position = typed
                    .attrs
                    .iter()
                    .position(|a| a.path().is_ident("default"));
                let default = position.map(|i| typed.attrs.remove(i).parse_args::<Expr>());
                (ident, (*typed.ty).clone(), default)
            }
        };
        Param {
            arg: arg.clone(),
            ident,
            ty,
            default,
        }
    }
}

/// The input of `task!`: a task path, then positional and named arguments.
pub struct TaskCall {
    pub path: Path,
    pub args: Vec<CallArg>,
}

/// One argument of `task!`.
pub enum CallArg {
    Positional(Expr),
    Named(Ident, Expr),
}

impl Parse for TaskCall {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let path: Path = input.parse()?;
        let mut args = Vec::new();
        if input.parse::<Option<Token![,]>>()?.is_some() {
            let exprs = Punctuated::<Expr, Token![,]>::parse_terminated(input)?;
            args = exprs.into_iter().map(CallArg::from).collect();
        }
        Ok(TaskCall { path, args })
    }
}

impl From<Expr> for CallArg {
    fn from(expr: Expr) -> Self {
        if let Expr::Assign(assign) = &expr {
            if let Expr::Path(left) = &*assign.left {
                if let Some(ident) = left.path.get_ident() {
                    return CallArg::Named(ident.clone(), (*assign.right).clone());
                }
            }
        }
        CallArg::Positional(expr)
    }
}
