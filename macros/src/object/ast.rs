//! Parsing: the `impl` block, with its `pub` functions sorted by what the manager does with
//! them.

use proc_macro2::TokenStream;
use syn::{Attribute, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, Type, Visibility};

/// The `impl` block under `#[manager_object]`.
pub struct ObjectImpl {
    /// The block as written; it is emitted unchanged.
    pub item: ItemImpl,
    /// Tokens after `#[manager_object`, which must be empty.
    pub attr: TokenStream,
    /// The block's `pub` functions; private ones are the type's own business.
    pub exposed: Vec<PubFn>,
}

/// What a `pub` function of the block is to the manager.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No `self`: it must return `Self`, and the proxy gets a constructor of its name.
    Constructor,
    /// `&self` or `&mut self`: the proxy gets a method of its name.
    Method,
    /// `self` by value, or a `self` of another type: refused.
    OtherReceiver,
}

/// A `pub` function of the block.
pub struct PubFn {
    pub item: ImplItemFn,
    pub role: Role,
    pub params: Vec<Param>,
}

/// A parameter other than `self`.
pub struct Param {
    pub pat: Box<Pat>,
    /// The parameter's name, when its pattern is a plain name (`mut` allowed).
    pub ident: Option<Ident>,
    pub ty: Type,
}

impl ObjectImpl {
    pub fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<Self> {
        let item: ItemImpl = syn::parse2(item).map_err(|e| {
            syn::Error::new(
                e.span(),
                "`#[manager_object]` goes on a type's `impl` block: `impl Counter { .. }`",
            )
        })?;
        let exposed = item
            .items
            .iter()
            .filter_map(|member| match member {
                ImplItem::Fn(function) if matches!(function.vis, Visibility::Public(_)) => {
                    Some(PubFn::new(function.clone()))
                }
                _ => None,
            })
            .collect();
        Ok(ObjectImpl {
            item,
            attr,
            exposed,
        })
    }
}

impl PubFn {
    fn new(item: ImplItemFn) -> Self {
        let role = match item.sig.receiver() {
            None => Role::Constructor,
            Some(receiver) if receiver.reference.is_some() && receiver.colon_token.is_none() => {
                Role::Method
            }
            Some(_) => Role::OtherReceiver,
        };
        let params = item
            .sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                FnArg::Typed(typed) => Some(Param::new(&typed.pat, &typed.ty)),
                FnArg::Receiver(_) => None,
            })
            .collect();
        PubFn { item, role, params }
    }

    pub fn name(&self) -> &Ident {
        &self.item.sig.ident
    }

    /// The parameters' names (`valid` makes sure each has one).
    pub fn param_idents(&self) -> Vec<&Ident> {
        self.params
            .iter()
            .filter_map(|p| p.ident.as_ref())
            .collect()
    }

    /// The function's doc comments, for the proxy's.
    pub fn docs(&self) -> impl Iterator<Item = &Attribute> {
        self.item.attrs.iter().filter(|a| a.path().is_ident("doc"))
    }
}

impl Param {
    fn new(pat: &Pat, ty: &Type) -> Self {
        let ident = match pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                Some(pat.ident.clone())
            }
            _ => None,
        };
        Param {
            pat: Box::new(pat.clone()),
            ident,
            ty: ty.clone(),
        }
    }
}
