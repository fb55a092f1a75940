//! Code generation: the typed builder behind `task!(f, ..)`, one state parameter per function
//! parameter, each `Unset` or `Set<T>`. It finishes as a `Call` when every parameter without a
//! default is set, and as a `Partial` otherwise; a partial that leaves exactly one such parameter
//! unset is what a map fills with each item.

use crate::expand::{default_of, state_param, FnParts};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, ToTokens};
use syn::Ident;

impl FnParts<'_> {
    /// `Builder<P0, .., Pn>` with parameter `i` replaced by `state`, the others generic.
    fn builder_with(&self, i: usize, state: TokenStream) -> TokenStream {
        let states = (0..self.params.len()).map(|j| {
            if j == i {
                state.clone()
            } else {
                state_param(j).into_token_stream()
            }
        });
        quote!(__Builder<#(#states),*>)
    }

    /// A builder literal that takes every field from `self` but `i`, which becomes `value`.
    fn rebuild(&self, i: usize, value: TokenStream) -> TokenStream {
        let fields = self.idents.iter().enumerate().map(|(j, ident)| {
            if j == i {
                quote!(#ident: #value)
            } else {
                quote!(#ident: self.#ident)
            }
        });
        quote!(__Builder { #(#fields),* })
    }

    fn states(&self) -> Vec<Ident> {
        (0..self.params.len()).map(state_param).collect()
    }

    /// The indices of the parameters without a default.
    fn required(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.params.len()).filter(|&i| !self.params[i].is_optional())
    }
}

/// The builder: its struct, its start, its setters and the traits that finish it.
pub fn builder(parts: &FnParts, vis: &syn::Visibility) -> TokenStream {
    let name = parts.name;
    let states = parts.states();
    let idents = &parts.idents;
    let unset = vec![quote!(__mp::Unset); states.len()];
    let setters = setters(parts);
    let positional = positional(parts);
    let builder_impl = builder_impl(parts);
    let finished = finished(parts, vis);
    let partial = partial_args(parts, vis);
    quote! {
        // Clone: a partial is cloned to map with it again.
        #[derive(Clone)]
        #vis struct __Builder<#(#states),*> {
            #(#idents: #states),*
        }

        impl #name {
            #[doc(hidden)]
            pub fn __builder() -> __Builder<#(#unset),*> {
                __Builder { #(#idents: __mp::Unset),* }
            }
        }

        impl<#(#states),*> __Builder<#(#states),*> {
            #(#setters)*
        }

        #(#positional)*
        #builder_impl
        #finished
        #partial
    }
}

/// A method per parameter, named after it, that sets it if it is not set yet.
fn setters(parts: &FnParts) -> Vec<TokenStream> {
    let states = parts.states();
    (0..states.len())
        .map(|i| {
            let (ident, ty, state) = (parts.idents[i], parts.types[i], &states[i]);
            let next = parts.builder_with(i, quote!(__mp::Set<#ty>));
            let body = parts.rebuild(i, quote!(__mp::Set(value)));
            quote! {
                pub fn #ident(self, value: #ty) -> #next where #state: __mp::NotGiven {
                    #body
                }
            }
        })
        .collect()
}

/// `PositionalArg<i>` for the builders whose parameter `i` is not set.
fn positional(parts: &FnParts) -> Vec<TokenStream> {
    let states = parts.states();
    (0..states.len())
        .map(|i| {
            let ty = parts.types[i];
            let others = states.iter().enumerate().filter(|(j, _)| *j != i);
            let others: Vec<&Ident> = others.map(|(_, s)| s).collect();
            let this = parts.builder_with(i, quote!(__mp::Unset));
            let next = parts.builder_with(i, quote!(__mp::Set<#ty>));
            let body = parts.rebuild(i, quote!(__mp::Set(value)));
            quote! {
                impl<#(#others),*> __mp::PositionalArg<#i> for #this {
                    type Value = #ty;
                    type Next = #next;
                    fn set(self, value: #ty) -> #next {
                        #body
                    }
                }
            }
        })
        .collect()
}

/// `Builder`: the task, whether the required parameters are all set, and which are not.
fn builder_impl(parts: &FnParts) -> TokenStream {
    let name = parts.name;
    let states = parts.states();
    let status = parts.required().fold(quote!(__mp::Complete), |acc, i| {
        let state = &states[i];
        quote!(<#acc as __mp::Status>::And<<#state as __mp::Slot>::Done>)
    });
    let holes = (0..states.len()).map(|i| match parts.params[i].is_optional() {
        true => quote!(()),
        false => {
            let (state, ident) = (&states[i], parts.idents[i]);
            quote!(<#state as __mp::Slot>::Mark<__unbound::#ident>)
        }
    });
    quote! {
        impl<#(#states: __mp::Slot),*> __mp::Builder for __Builder<#(#states),*> {
            type Task = #name;
            type Status = #status;
            type Holes = (#(#holes,)*);
        }
    }
}

/// `Finished`, for the builders whose required parameters are all set: each required parameter
/// `x` needs a `__Requires_x` trait, so that a missing one is an error that names it.
fn finished(parts: &FnParts, vis: &syn::Visibility) -> TokenStream {
    let name = parts.name;
    let name_str = name.to_string();
    let states = parts.states();
    let mut required_traits = Vec::new();
    let mut bounds = Vec::new();
    let mut values = Vec::new();
    for (i, param) in parts.params.iter().enumerate() {
        let (ident, ty, state) = (parts.idents[i], parts.types[i], &states[i]);
        match default_of(param) {
            Some(default) => {
                bounds.push(quote!(#state: __mp::OrDefault<#ty>));
                values.push(quote!(#ident: __mp::OrDefault::or_default(self.#ident, || #default)));
            }
            None => {
                let required = format_ident!("__Requires_{}", ident);
                let message = format!("missing argument `{ident}` for task `{name_str}`");
                let label = format!("`{name_str}` needs a value for `{ident}`");
                required_traits.push(quote! {
                    #[diagnostic::on_unimplemented(message = #message, label = #label)]
                    #[allow(non_camel_case_types)]
                    #vis trait #required<T> {
                        fn value(self) -> T;
                    }
                    impl<T> #required<T> for __mp::Set<T> {
                        fn value(self) -> T {
                            self.0
                        }
                    }
                });
                bounds.push(quote!(#state: #required<#ty>));
                values.push(quote!(#ident: #required::value(self.#ident)));
            }
        }
    }
    quote! {
        #(#required_traits)*

        impl<#(#states: __mp::Slot),*> __mp::Finished for __Builder<#(#states),*>
        where
            #(#bounds),*
        {
            fn complete(self) -> __mp::Call<#name> {
                __mp::Call::new(__Args { #(#values),* })
            }
        }
    }
}

/// `PartialArgs`, for the builders that leave exactly one required parameter unset: a marker
/// type per required parameter, named after it, and a trait `__OneUnbound` implemented for each
/// `Holes` tuple with one marker, whose message names the markers when there are more. Nothing
/// for a task whose parameters all have defaults: its builders are never partial.
fn partial_args(parts: &FnParts, vis: &syn::Visibility) -> TokenStream {
    let markers: Vec<&Ident> = parts.required().map(|i| parts.idents[i]).collect();
    if markers.is_empty() {
        return TokenStream::new();
    }
    let states = parts.states();
    let name_str = parts.name.to_string();
    let message =
        format!("`task!({name_str}, ..)` leaves more than one parameter unbound, and `map` needs exactly one");
    let label = "these parameters are unbound (a bound one shows as `()`): `{Self}`";
    let note = "bind all the parameters but one, by name or by position";
    let impls = parts.required().map(|i| one_unbound(parts, i));
    let holes = quote!(<Self as __mp::Builder>::Holes);
    quote! {
        #[allow(non_camel_case_types, dead_code)]
        #vis mod __unbound {
            #(pub enum #markers {})*
        }

        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        #vis trait __OneUnbound<B> {
            type Item;
            fn args_with(builder: &B, item: Self::Item) -> __Args;
        }

        #(#impls)*

        impl<#(#states: __mp::Slot),*> __mp::PartialArgs for __Builder<#(#states),*>
        where
            #holes: __OneUnbound<Self>,
        {
            type Item = <#holes as __OneUnbound<Self>>::Item;
            fn args_with(&self, item: Self::Item) -> __Args {
                <#holes as __OneUnbound<Self>>::args_with(self, item)
            }
        }
    }
}

/// `__OneUnbound` for the builders that leave only the required parameter `hole` unset: its
/// value is the item; the others are copies of the bound values, or defaults.
fn one_unbound(parts: &FnParts, hole: usize) -> TokenStream {
    let states = parts.states();
    let mut holes = Vec::new();
    let mut bounds = Vec::new();
    let mut values = Vec::new();
    for (i, param) in parts.params.iter().enumerate() {
        let (ident, ty, state) = (parts.idents[i], parts.types[i], &states[i]);
        if i == hole {
            holes.push(quote!(__unbound::#ident));
            values.push(quote!(#ident: item));
            continue;
        }
        holes.push(quote!(()));
        match default_of(param) {
            Some(default) => {
                bounds.push(quote!(#state: __mp::BoundOr<#ty>));
                values.push(quote!(#ident: __mp::BoundOr::bound_or(&builder.#ident, || #default)));
            }
            None => {
                bounds.push(quote!(#state: __mp::Bound<#ty>));
                values.push(quote!(#ident: __mp::Bound::bound(&builder.#ident)));
            }
        }
    }
    let item = parts.types[hole];
    quote! {
        impl<#(#states: __mp::Slot),*> __OneUnbound<__Builder<#(#states),*>> for (#(#holes,)*)
        where
            #(#bounds),*
        {
            type Item = #item;
            fn args_with(builder: &__Builder<#(#states),*>, item: #item) -> __Args {
                __Args { #(#values),* }
            }
        }
    }
}
