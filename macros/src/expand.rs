//! Code generation: the task's marker type, argument struct and registration, and `task!`'s
//! expansion; the argument builder it feeds is written by `builder.rs`.

use crate::ast::{CallArg, Param, TaskCall, TaskFn, TaskItem};
use crate::valid::type_ident;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, ItemImpl, ReturnType};

pub fn task_item(item: &TaskItem) -> TokenStream {
    match item {
        TaskItem::Function(function) => task_fn(function),
        TaskItem::RunImpl(item) => run_impl(item),
    }
}

/// The parts of a function task that the generated items share.
pub(crate) struct FnParts<'a> {
    pub(crate) name: &'a Ident,
    pub(crate) idents: Vec<&'a Ident>,
    pub(crate) types: Vec<&'a syn::Type>,
    pub(crate) params: &'a [Param],
}

impl<'a> FnParts<'a> {
    fn new(function: &'a TaskFn) -> Self {
        let params = &function.params[..];
        FnParts {
            name: &function.item.sig.ident,
            idents: params.iter().filter_map(|p| p.ident.as_ref()).collect(),
            types: params.iter().map(|p| &p.ty).collect(),
            params,
        }
    }
}

pub(crate) fn state_param(i: usize) -> Ident {
    format_ident!("__P{}", i)
}

fn task_fn(function: &TaskFn) -> TokenStream {
    let item = &function.item;
    let vis = &item.vis;
    let parts = FnParts::new(function);
    let name = parts.name;
    let output = match &item.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let args_struct = args_struct(&parts, vis);
    let takes_args = takes_args(&parts);
    let one_arg = one_arg(&parts);
    let builder = crate::builder::builder(&parts, vis);
    let packing = packing(&parts, &output);
    let (idents, name_str) = (&parts.idents, name.to_string());
    quote! {
        #item

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #name {}

        const _: () = {
            use ::multiproc::__private as __mp;
            // For the layout picks of `packing`.
            use __mp::pack::{Layout as _, PickPlain as _, PickPlainVec as _, PickSerde as _};

            #args_struct

            impl __mp::Task for #name {
                const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", #name_str);
                type Args = __Args;
                type Output = #output;
                fn call(args: __Args) -> #output {
                    #name(#(args.#idents),*)
                }
                #packing
            }

            __mp::inventory::submit! { __mp::TaskEntry::of::<#name>() }

            #takes_args
            #one_arg
            #builder
        };
    }
}

/// The serde argument struct, one field per parameter. The generated types take the function's
/// visibility, so that a private parameter type stays legal in them.
fn args_struct(parts: &FnParts, vis: &syn::Visibility) -> TokenStream {
    let (idents, types) = (&parts.idents, &parts.types);
    quote! {
        #[derive(__mp::serde::Serialize, __mp::serde::Deserialize)]
        #[serde(crate = "::multiproc::__private::serde")]
        #vis struct __Args {
            #(pub #idents: #types),*
        }
    }
}

/// The `Task` methods that pack a chunk's arguments and outputs: each parameter and the output
/// with the layout its type picks (its bytes if it is plain old data, the wire format otherwise).
fn packing(parts: &FnParts, output: &TokenStream) -> TokenStream {
    let (idents, types) = (&parts.idents, &parts.types);
    let layout = |ty: &dyn ToTokens| quote!((&__mp::pack::Probe::<#ty>::new()).layout());
    let arg_layouts: Vec<TokenStream> = types.iter().map(|ty| layout(ty)).collect();
    let output_layout = layout(output);
    quote! {
        #[inline]
        fn pack_args(args: &__Args, out: &mut ::std::vec::Vec<u8>) -> ::core::result::Result<(), __mp::CodecError> {
            #( #arg_layouts.put(&args.#idents, out)?; )*
            ::core::result::Result::Ok(())
        }
        #[inline]
        fn unpack_args(input: &mut &[u8]) -> ::core::result::Result<__Args, __mp::CodecError> {
            ::core::result::Result::Ok(__Args { #( #idents: #arg_layouts.take(input)? ),* })
        }
        #[inline]
        fn pack_output(output: &#output, out: &mut ::std::vec::Vec<u8>) -> ::core::result::Result<(), __mp::CodecError> {
            #output_layout.put(output, out)
        }
        #[inline]
        fn unpack_output(input: &mut &[u8]) -> ::core::result::Result<#output, __mp::CodecError> {
            #output_layout.take(input)
        }
        #[inline]
        fn unpack_outputs(
            input: &mut &[u8],
            count: usize,
            out: &mut ::std::vec::Vec<#output>,
        ) -> ::core::result::Result<(), __mp::CodecError> {
            #output_layout.take_many(input, count, out)
        }
    }
}

/// The value of parameter `i` when a call leaves it out.
pub(crate) fn default_of(param: &Param) -> Option<TokenStream> {
    match &param.default {
        Some(Ok(expr)) => Some(quote!(#expr)),
        _ => None,
    }
}

/// `TakesArgs` for the full tuple and every shorter one that leaves off only defaulted
/// parameters.
fn takes_args(parts: &FnParts) -> TokenStream {
    let name = parts.name;
    let n = parts.params.len();
    let shortest = parts
        .params
        .iter()
        .rposition(|p| !p.is_optional())
        .map_or(0, |i| i + 1);
    let impls = (shortest..=n).map(|len| {
        let types = &parts.types[..len];
        let fields =
            parts
                .idents
                .iter()
                .zip(parts.params)
                .enumerate()
                .map(|(i, (ident, param))| {
                    let index = syn::Index::from(i);
                    let value = if i < len {
                        quote!(args.#index)
                    } else {
                        default_of(param).unwrap_or_default()
                    };
                    quote!(#ident: #value)
                });
        quote! {
            impl __mp::TakesArgs<(#(#types,)*)> for #name {
                fn args_from(args: (#(#types,)*)) -> __Args {
                    __Args { #(#fields),* }
                }
            }
        }
    });
    quote!(#(#impls)*)
}

/// `OneArg` when a call with one positional argument is possible, for `Pool::map`.
fn one_arg(parts: &FnParts) -> TokenStream {
    let required = parts.params.iter().filter(|p| !p.is_optional()).count();
    let Some(first) = parts.types.first().filter(|_| required <= 1) else {
        return TokenStream::new();
    };
    let name = parts.name;
    quote! {
        impl __mp::OneArg for #name {
            type Arg = #first;
            fn args_from_one(arg: #first) -> __Args {
                <#name as __mp::TakesArgs<(#first,)>>::args_from((arg,))
            }
        }
    }
}

/// `#[process_task] impl Run for MyType`: the type is its own argument struct.
fn run_impl(item: &ItemImpl) -> TokenStream {
    let ty = &item.self_ty;
    let name_str = type_ident(ty).map(Ident::to_string).unwrap_or_default();
    quote! {
        #item

        const _: () = {
            use ::multiproc::__private as __mp;

            impl __mp::Task for #ty {
                const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", #name_str);
                type Args = #ty;
                type Output = ();
                fn call(body: #ty) {
                    <#ty as ::multiproc::Run>::run(body)
                }
            }

            __mp::inventory::submit! { __mp::TaskEntry::of::<#ty>() }

            impl __mp::Target for #ty {
                type Output = ();
                fn task_name(&self) -> ::core::option::Option<&'static str> {
                    ::core::option::Option::Some(<#ty as __mp::Task>::NAME)
                }
                fn invoke(self) {
                    <#ty as __mp::Task>::call(self)
                }
                fn encode_args(
                    &self,
                ) -> ::core::option::Option<::core::result::Result<::std::vec::Vec<u8>, __mp::CodecError>> {
                    ::core::option::Option::Some(__mp::encode_args(self))
                }
            }
        };
    }
}

/// `task!(f)`: the unbound task; `task!(f, ..)`: the builder, fed and finished (as a call, or
/// as a partial if it leaves a parameter unbound).
pub fn task_call(call: &TaskCall) -> TokenStream {
    let path = &call.path;
    if call.args.is_empty() {
        return quote!(::multiproc::TaskRef::<#path>::new());
    }
    let builder = Ident::new("__builder", Span::mixed_site());
    let mut position = 0usize;
    let steps = call.args.iter().map(|arg| match arg {
        CallArg::Positional(expr) => {
            let i = position;
            position += 1;
            quote_spanned! {expr.span()=>
                let #builder = ::multiproc::__private::PositionalArg::<#i>::set(#builder, #expr);
            }
        }
        CallArg::Named(ident, expr) => quote_spanned! {ident.span()=>
            let #builder = #builder.#ident(#expr);
        },
    });
    let unknown = unknown_names(call);
    let finish = quote_spanned!(path.span()=> ::multiproc::__private::finish);
    quote! {
        {
            #unknown
            let #builder = #path::__builder();
            #(#steps)*
            #finish(#builder)
        }
    }
}

/// Items that turn a name the task has no parameter for into an error that says so, at the
/// name: each name given is also a method of a local trait, which the builder's own method of
/// that name (its parameter's setter) shadows; a name without a setter reaches the trait's
/// method, whose bound fails with the message.
fn unknown_names(call: &TaskCall) -> TokenStream {
    let task = path_text(&call.path);
    let names = call.args.iter().filter_map(|arg| match arg {
        CallArg::Named(ident, _) => Some(ident),
        CallArg::Positional(_) => None,
    });
    let (markers, methods): (Vec<_>, Vec<_>) = names
        .enumerate()
        .map(|(i, ident)| {
            let marker = format_ident!("__MultiprocUnknown{}", i, span = Span::mixed_site());
            let message = format!("unknown argument `{ident}` for task `{task}`");
            let label = format!("`{task}` has no parameter named `{ident}`");
            let marker_trait = quote! {
                #[diagnostic::on_unimplemented(message = #message, label = #label)]
                trait #marker {}
            };
            let method = quote! {
                fn #ident<V>(self, _value: V) -> Self where Self: #marker {
                    self
                }
            };
            (marker_trait, method)
        })
        .unzip();
    if methods.is_empty() {
        return TokenStream::new();
    }
    let named = Ident::new("__MultiprocNamed", Span::mixed_site());
    quote! {
        #(#markers)*
        #[allow(dead_code)]
        trait #named: ::core::marker::Sized {
            #(#methods)*
        }
        impl<B> #named for B {}
    }
}

/// The path as written, without spaces: `jobs::add`.
fn path_text(path: &syn::Path) -> String {
    path.to_token_stream()
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}
