//! Checks: what the compiler could not explain well later is rejected here, at the user's tokens.

use crate::ast::{CallArg, Param, TaskCall, TaskFn, TaskItem};
use std::collections::HashSet;
use syn::{Error, FnArg, ItemImpl, ReturnType, Type};

/// Collects errors, so that one compile reports every mistake at once.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            none => *none = Some(error),
        }
    }

    pub(crate) fn spanned(&mut self, tokens: impl quote::ToTokens, message: &str) {
        self.push(Error::new_spanned(tokens, message));
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

pub fn task_item(item: &TaskItem) -> syn::Result<()> {
    match item {
        TaskItem::Function(function) => task_fn(function),
        TaskItem::RunImpl(item) => run_impl(item),
    }
}

fn task_fn(function: &TaskFn) -> syn::Result<()> {
    let mut errors = Errors::default();
    let sig = &function.item.sig;
    if !function.attr.is_empty() {
        errors.spanned(&function.attr, "`#[process_task]` takes no arguments");
    }
    if let Some(asyncness) = &sig.asyncness {
        errors.spanned(
            asyncness,
            "a task cannot be `async`: it runs as the body of a process",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(unsafety, "a task cannot be `unsafe`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.spanned(&sig.generics, "a task cannot be generic: a child process finds it by name, so its types must be known");
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "a task cannot be variadic");
    }
    for param in &function.params {
        check_param(param, &mut errors);
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        check_owned(ty, "a task's result", &mut errors);
    }
    errors.finish()
}

fn check_param(param: &Param, errors: &mut Errors) {
    match &param.arg {
        FnArg::Receiver(receiver) => errors.spanned(
            receiver,
            "a task function cannot take `self`; for a process body with state, put `#[process_task]` on `impl Run for MyType`",
        ),
        FnArg::Typed(typed) if param.ident.is_none() => {
            errors.spanned(&typed.pat, "a task parameter must be a plain name, such as `x: u32`")
        }
        FnArg::Typed(_) => check_owned(&param.ty, "a task's parameters", errors),
    }
    if let Some(Err(error)) = &param.default {
        errors.push(error.clone());
    }
}

/// References and `impl Trait` cannot cross a process boundary.
pub(crate) fn check_owned(ty: &Type, what: &str, errors: &mut Errors) {
    match ty {
        Type::Reference(_) => errors.spanned(
            ty,
            &format!("{what} must be owned values, since they cross a process boundary: use `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`"),
        ),
        Type::ImplTrait(_) => errors.spanned(ty, &format!("{what} cannot be `impl Trait`: they must be a serde type the compiler can name")),
        _ => {}
    }
}

fn run_impl(item: &ItemImpl) -> syn::Result<()> {
    let mut errors = Errors::default();
    let is_run = item
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|segment| segment.ident == "Run");
    if !is_run {
        errors.spanned(
            &item.self_ty,
            "`#[process_task]` on an impl block needs `impl Run for MyType`",
        );
    }
    if !item.generics.params.is_empty() {
        errors.spanned(
            &item.generics,
            "a process body cannot be generic: a child process finds it by name",
        );
    }
    if type_ident(&item.self_ty).is_none() {
        errors.spanned(
            &item.self_ty,
            "a process body must be a named type, such as `MyProcess`",
        );
    }
    errors.finish()
}

/// The name of a plain named type (`MyType` or `path::MyType`).
pub fn type_ident(ty: &Type) -> Option<&syn::Ident> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().map(|s| &s.ident),
        _ => None,
    }
}

pub fn task_call(call: &TaskCall) -> syn::Result<()> {
    let mut errors = Errors::default();
    let mut named = HashSet::new();
    let mut seen_named = false;
    for arg in &call.args {
        match arg {
            CallArg::Positional(expr) if seen_named => {
                errors.spanned(expr, "positional arguments must come before named ones")
            }
            CallArg::Positional(_) => {}
            CallArg::Named(ident, _) => {
                seen_named = true;
                if !named.insert(ident.to_string()) {
                    errors.spanned(ident, &format!("argument `{ident}` is given twice"));
                }
            }
        }
    }
    errors.finish()
}
