//! `#[trio::checkpoint]`: an async fn that is a checkpoint by construction.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Type};

use crate::require_async;

const NEEDS_RESULT: &str =
    "#[checkpoint] needs a return type that can carry Cancelled, like trio::Result<T>";

/// The declared return type, if it looks like a `Result` (any path ending in `Result`).
fn result_type(function: &ItemFn) -> syn::Result<&Type> {
    let ReturnType::Type(_, ty) = &function.sig.output else {
        return Err(syn::Error::new_spanned(&function.sig, NEEDS_RESULT));
    };
    if !crate::names_a_result(ty) {
        return Err(syn::Error::new_spanned(ty, NEEDS_RESULT));
    }
    Ok(ty)
}

/// Expands `#[checkpoint]`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(item)?;
    if !args.is_empty() {
        return Err(syn::Error::new_spanned(
            args,
            "#[checkpoint] takes no arguments",
        ));
    }
    require_async(&function, "checkpoint")?;
    let ret = result_type(&function)?;
    let attrs = &function.attrs;
    let vis = &function.vis;
    let sig = &function.sig;
    let block = &function.block;
    let name = sig.ident.to_string();
    // Spanned on the return type: if its error type can't hold a trio::Error, the compiler
    // points there.
    let cancel_point = quote_spanned! {ret.span()=>
        if let ::core::result::Result::Err(__trio_cancelled) =
            ::trio::lowlevel::checkpoint_if_cancelled().await
        {
            // `From` is the identity when the error type is `trio::Error` itself.
            #[allow(clippy::useless_conversion)]
            let __trio_error = ::core::convert::From::from(__trio_cancelled);
            return ::core::result::Result::Err(__trio_error);
        }
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            ::trio::__private::inventory::submit! {
                ::trio::__private::CheckpointSite {
                    function: #name,
                    module: ::core::module_path!(),
                    file: ::core::file!(),
                    line: ::core::line!(),
                }
            }
            #cancel_point
            let __trio_tracker = ::trio::__private::ScheduleTracker::new();
            let __trio_result: #ret =
                ::trio::__private::typed_body::<#ret, _>(async move #block).await;
            if __trio_result.is_ok() && !__trio_tracker.scheduled() {
                ::trio::lowlevel::cancel_shielded_checkpoint().await;
            }
            __trio_result
        }
    })
}
