//! `#[trio::main]` and `#[trio::test]`: entry points that run an `async fn` in trio.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

use crate::options::TestOptions;
use crate::require_async;

/// Checks shared by both entry points: async, no parameters, no generics.
fn check_entry(function: &ItemFn, macro_name: &str) -> syn::Result<()> {
    require_async(function, macro_name)?;
    let sig = &function.sig;
    if let Some(arg) = sig.inputs.first() {
        return Err(syn::Error::new_spanned(
            arg,
            format!("#[{macro_name}] functions take no parameters"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!("#[{macro_name}] functions cannot be generic"),
        ));
    }
    // The return type is checked by the compiler (`trio::__private::MainOutput`): any alias
    // works, and the message names the fix.
    Ok(())
}

/// The body as an inner `async fn` with the declared return type, so that `?` and `return`
/// inside it mean what they say.
fn inner_async_fn(function: &ItemFn, name: &syn::Ident) -> TokenStream {
    let output = &function.sig.output;
    let block = &function.block;
    quote! {
        async fn #name() #output #block
    }
}

/// A span to hang "the return type must be ..." errors on.
fn output_span(function: &ItemFn) -> proc_macro2::Span {
    match &function.sig.output {
        ReturnType::Default => function.sig.ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    }
}

/// `#[trio::main]`. A rejected `main` is replaced by an empty one, so that the only error
/// shown is the rejection (not also "`main` function not found").
pub(crate) fn main(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(item)?;
    let is_main = function.sig.ident == "main";
    expand_main(args, function).or_else(|error| {
        let mut tokens = error.into_compile_error();
        if is_main {
            tokens.extend(quote! { fn main() {} });
        }
        Ok(tokens)
    })
}

fn expand_main(args: TokenStream, function: ItemFn) -> syn::Result<TokenStream> {
    if !args.is_empty() {
        return Err(syn::Error::new_spanned(
            args,
            "#[trio::main] takes no arguments",
        ));
    }
    check_entry(&function, "trio::main")?;
    let attrs = &function.attrs;
    let vis = &function.vis;
    let ident = &function.sig.ident;
    let inner = syn::Ident::new("__trio_main", ident.span());
    let body = inner_async_fn(&function, &inner);
    let run = quote_spanned! {output_span(&function)=>
        ::trio::__private::run_main(#inner())
    };
    Ok(quote! {
        #(#attrs)*
        #vis fn #ident() {
            #body
            #run
        }
    })
}

/// `#[trio::test]`.
pub(crate) fn test(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(item)?;
    let options = TestOptions::parse(args)?;
    check_entry(&function, "trio::test")?;
    let attrs = &function.attrs;
    let vis = &function.vis;
    let ident = &function.sig.ident;
    let inner = syn::Ident::new("__trio_test", ident.span());
    let body = inner_async_fn(&function, &inner);
    let config = options.config();
    let run = quote_spanned! {output_span(&function)=>
        ::trio::__private::run_test(__trio_config, #inner())
    };
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #ident() {
            #body
            let __trio_config = #config;
            #run
        }
    })
}
