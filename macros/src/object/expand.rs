//! Code generation of `#[manager_object]`: the `impl` block unchanged, the proxy type with a
//! constructor per constructor and a method per exposed method, and the server's side, the
//! type's `Served` impl (dispatch by name) and its registration.

use super::ast::{ObjectImpl, PubFn, Role};
use crate::valid::type_ident;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ReturnType, Type};

/// Where the generated code finds the runtime's support.
fn runtime() -> TokenStream {
    quote!(::multiproc::__private::managers)
}

pub fn object_impl(object: &ObjectImpl) -> TokenStream {
    let item = &object.item;
    let self_ty = &item.self_ty;
    let Some(name) = type_ident(self_ty) else {
        // `valid` refused it already.
        return quote!(#item);
    };
    let proxy = format_ident!("{}Proxy", name, span = name.span());
    let proxy_type = proxy_type(name, &proxy);
    let proxy_fns = object.exposed.iter().map(|f| proxy_fn(f, self_ty));
    let served = served(object, name);
    quote! {
        #item

        #proxy_type

        impl #proxy {
            #(#proxy_fns)*
        }

        #served
    }
}

/// The proxy: a serde handle, compared and hashed as the object it names.
fn proxy_type(name: &Ident, proxy: &Ident) -> TokenStream {
    let rt = runtime();
    let doc = format!("A proxy to a [`{name}`] served by a manager, made by `#[manager_object]` (Python's `BaseProxy` of a registered type). Clone it, pass it to a task or store it in a managed container: it names the same object.");
    let proxy_name = proxy.to_string();
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::cmp::PartialEq, ::core::cmp::Eq, ::core::hash::Hash,
            ::multiproc::__private::serde::Serialize, ::multiproc::__private::serde::Deserialize)]
        #[serde(crate = "::multiproc::__private::serde", transparent)]
        pub struct #proxy {
            handle: #rt::ObjectHandle,
        }

        impl ::core::fmt::Debug for #proxy {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                self.handle.debug(#proxy_name, f)
            }
        }
    }
}

/// A constructor or method of the proxy, with the user's parameters and docs.
fn proxy_fn(function: &PubFn, self_ty: &Type) -> TokenStream {
    let rt = runtime();
    let fn_name = function.name();
    let name_str = fn_name.to_string();
    let idents = function.param_idents();
    let types: Vec<&Type> = function.params.iter().map(|p| &p.ty).collect();
    let user_docs: Vec<_> = function.docs().collect();
    // A blank line between the user's docs and ours, if there are any of the user's.
    let separator = (!user_docs.is_empty()).then(|| quote!(#[doc = ""]));
    let args_type = args_type(function);
    let error = quote!(::multiproc::__private::managers::ManagerError);
    match function.role {
        Role::Constructor => {
            let doc = format!("Makes an object in `manager` with its `{name_str}` (Python's `manager.TypeName(..)`).\n\n# Errors\n\nA `ManagerError`: the manager gone or shut down, or the constructor panicked.");
            quote! {
                #(#user_docs)*
                #separator
                #[doc = #doc]
                pub fn #fn_name(manager: &#rt::Manager, #(#idents: #types),*) -> ::core::result::Result<Self, #error> {
                    #rt::ObjectHandle::create::<#self_ty, #args_type>(manager, #name_str, &(#(#idents,)*))
                        .map(|handle| Self { handle })
                }
            }
        }
        _ => {
            let output = output_type(&function.item.sig.output);
            let doc = format!("Runs `{name_str}` on the object in the manager.\n\n# Errors\n\nA `ManagerError`: the manager gone or shut down, or the method panicked (the object keeps the state it left).");
            quote! {
                #(#user_docs)*
                #separator
                #[doc = #doc]
                pub fn #fn_name(&self, #(#idents: #types),*) -> ::core::result::Result<#output, #error> {
                    self.handle.call::<#self_ty, #args_type, #output>(#name_str, &(#(#idents,)*))
                }
            }
        }
    }
}

/// The result type, written with the user's tokens so that a bound it misses is reported there.
fn output_type(output: &ReturnType) -> TokenStream {
    match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    }
}

/// The parameters' types as one tuple, the arguments' form on the wire; spanned at the first
/// parameter's type, so that a parameter type that is not serde is reported in the signature.
fn args_type(function: &PubFn) -> TokenStream {
    let types = function.params.iter().map(|p| &p.ty);
    let span = function
        .params
        .first()
        .map_or_else(|| function.item.sig.inputs.span(), |p| p.ty.span());
    quote_spanned!(span=> (#(#types,)*))
}

/// The server's side: `Served` dispatches by name, and the type is registered by its path.
fn served(object: &ObjectImpl, name: &Ident) -> TokenStream {
    let rt = runtime();
    let self_ty = &object.item.self_ty;
    let name_str = name.to_string();
    let arms = |role: Role| -> Vec<TokenStream> {
        object
            .exposed
            .iter()
            .filter(|f| f.role == role)
            .map(|f| dispatch_arm(f, self_ty))
            .collect()
    };
    let (constructors, methods) = (arms(Role::Constructor), arms(Role::Method));
    quote! {
        const _: () = {
            use #rt as __mm;

            impl __mm::Served for #self_ty {
                const NAME: &'static str = ::core::concat!(::core::module_path!(), "::", #name_str);

                fn construct(constructor: &str, args: &[u8]) -> ::core::result::Result<Self, __mm::CallError> {
                    match constructor {
                        #(#constructors)*
                        _ => ::core::result::Result::Err(__mm::CallError::NoSuchMethod),
                    }
                }

                fn call(&mut self, method: &str, args: &[u8]) -> ::core::result::Result<::std::vec::Vec<u8>, __mm::CallError> {
                    match method {
                        #(#methods)*
                        _ => ::core::result::Result::Err(__mm::CallError::NoSuchMethod),
                    }
                }
            }

            ::multiproc::__private::inventory::submit! { __mm::ObjectEntry::of::<#self_ty>() }
        };
    }
}

/// One arm of `construct` or `call`: decode the arguments, run, encode the result.
fn dispatch_arm(function: &PubFn, self_ty: &Type) -> TokenStream {
    let fn_name = function.name();
    let name_str = fn_name.to_string();
    let idents = function.param_idents();
    let args_type = args_type(function);
    let decode = quote! {
        let (#(#idents,)*) = __mm::decode_args::<#args_type>(args)?;
    };
    match function.role {
        Role::Constructor => quote! {
            #name_str => {
                #decode
                ::core::result::Result::Ok(<#self_ty>::#fn_name(#(#idents),*))
            }
        },
        _ => {
            let output = output_type(&function.item.sig.output);
            quote! {
            #name_str => {
                #decode
                __mm::encode_output::<#output>(&<#self_ty>::#fn_name(self, #(#idents),*))
            }
            }
        }
    }
}
