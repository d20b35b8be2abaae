//! `#[trio::checkpoint]`: an async fn that is a checkpoint by construction.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Type};

use crate::require_async;

/// The declared return type. Whether it is a `Result` whose error type can carry a
/// `trio::Error` is checked by the compiler (`trio::__private::CheckpointReturn` and
/// `CheckpointError`), so aliases of any name work and the message names the fix.
fn return_type(function: &ItemFn) -> syn::Result<&Type> {
    match &function.sig.output {
        ReturnType::Type(_, ty) => Ok(ty),
        ReturnType::Default => Err(syn::Error::new_spanned(
            &function.sig,
            "#[checkpoint] functions return a `Result` that can carry `Cancelled`, like \
             `trio::Result<T>`; this one returns nothing",
        )),
    }
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
    let ret = return_type(&function)?;
    let attrs = &function.attrs;
    let vis = &function.vis;
    let sig = &function.sig;
    let block = &function.block;
    let name = sig.ident.to_string();
    // Spanned on the return type: if it is no `Result`, or its error type can't hold a
    // trio::Error, the compiler points there (both checks report the same bound at the same
    // span, so the compiler shows it once).
    let cancel_point = quote_spanned! {ret.span()=>
        if let ::core::result::Result::Err(__trio_cancelled) =
            ::trio::lowlevel::checkpoint_if_cancelled().await
        {
            return ::trio::__private::checkpoint_cancelled(__trio_cancelled);
        }
    };
    let is_ok = quote_spanned! {ret.span()=>
        ::trio::__private::CheckpointReturn::is_ok(&__trio_result)
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
            if #is_ok && !__trio_tracker.scheduled() {
                ::trio::lowlevel::cancel_shielded_checkpoint().await;
            }
            __trio_result
        }
    })
}
