//! Checks of `#[manager_object]`: what the proxy or the server could not serve is rejected
//! here, at the user's tokens.

use super::ast::{ObjectImpl, PubFn, Role};
use crate::valid::{check_owned, type_ident, Errors};
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{ReturnType, Type};

pub fn object_impl(object: &ObjectImpl) -> syn::Result<()> {
    let mut errors = Errors::default();
    let item = &object.item;
    if !object.attr.is_empty() {
        errors.spanned(&object.attr, "`#[manager_object]` takes no arguments");
    }
    if let Some((_, path, _)) = &item.trait_ {
        errors.spanned(
            path,
            "`#[manager_object]` goes on the type's own `impl` block, not on a trait's",
        );
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.spanned(&item.generics, "a served type cannot be generic: the manager finds it by name, so its types must be known");
    }
    let Some(name) = type_ident(&item.self_ty) else {
        errors.spanned(
            &item.self_ty,
            "a served type must be a named type, such as `Counter`",
        );
        return errors.finish();
    };
    for function in &object.exposed {
        check_fn(function, name, &mut errors);
    }
    let constructors = object
        .exposed
        .iter()
        .filter(|f| f.role == Role::Constructor);
    if constructors.count() == 0 {
        errors.spanned(
            &item.self_ty,
            &format!("a served type needs a constructor, a `pub fn` that returns `Self`, such as `pub fn new(..) -> Self`: the manager builds `{name}` itself"),
        );
    }
    errors.finish()
}

fn check_fn(function: &PubFn, name: &syn::Ident, errors: &mut Errors) {
    let sig = &function.item.sig;
    if let Some(asyncness) = &sig.asyncness {
        errors.spanned(
            asyncness,
            "a served method cannot be `async`: the manager runs it to completion for each call",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(
            unsafety,
            "a served method cannot be `unsafe`: a proxy could call it from any process",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.spanned(&sig.generics, "a served method cannot be generic: the manager calls it by name, so its types must be known; make it private or give it concrete types");
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "a served method cannot be variadic");
    }
    if function.role == Role::OtherReceiver {
        if let Some(receiver) = sig.receiver() {
            errors.spanned(receiver, "a served method takes `&self` or `&mut self`: the object stays in the manager, so it cannot be moved out or taken by another type");
        }
    }
    for param in &function.params {
        match &param.ident {
            None => errors.spanned(
                &param.pat,
                "a served method's parameter must be a plain name, such as `by: i64`",
            ),
            // The proxy's constructor takes the manager under that name.
            Some(ident) if ident == "manager" && function.role == Role::Constructor => errors
                .spanned(
                    ident,
                    "the proxy's constructor takes the manager as `manager`: give this parameter another name",
                ),
            Some(_) => {}
        }
        check_owned(&param.ty, "a served method's parameters", errors);
        refuse_self(&param.ty, errors);
    }
    match (&sig.output, function.role) {
        (ReturnType::Type(_, ty), Role::Constructor) if returns_self(ty, name) => {}
        (_, Role::Constructor) => errors.spanned(
            sig,
            &format!("a `pub fn` of a served type without `self` must be a constructor returning `Self`; make it private or move it to another `impl {name}` block"),
        ),
        (ReturnType::Type(_, ty), _) => {
            check_owned(ty, "a served method's results", errors);
            refuse_self(ty, errors);
        }
        (ReturnType::Default, _) => {}
    }
}

/// Whether a constructor's result is the type itself.
fn returns_self(ty: &Type, name: &syn::Ident) -> bool {
    type_ident(ty).is_some_and(|ident| ident == "Self" || ident == name)
}

/// `Self` in a method's types would mean the proxy in the generated proxy method.
fn refuse_self(ty: &Type, errors: &mut Errors) {
    if mentions_self(ty.to_token_stream()) {
        errors.spanned(
            ty,
            "name the type instead of `Self` in a served method's parameters and results",
        );
    }
}

fn mentions_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "Self",
        TokenTree::Group(group) => mentions_self(group.stream()),
        _ => false,
    })
}
