//! `#[trio::wchan]`: marks an async fn as a wait-channel frame for task dumps.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemFn, LitStr, ReturnType};

use crate::require_async;

/// Expands `#[trio::wchan]` / `#[trio::wchan("label")]`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(item)?;
    let label = if args.is_empty() {
        LitStr::new(&function.sig.ident.to_string(), function.sig.ident.span())
    } else {
        syn::parse2::<LitStr>(args.clone()).map_err(|_| {
            syn::Error::new_spanned(
                &args,
                "#[trio::wchan] takes at most one argument, a string literal label, like \
                 #[trio::wchan(\"waiting for the peer\")]",
            )
        })?
    };
    require_async(&function, "trio::wchan")?;
    let attrs = &function.attrs;
    let vis = &function.vis;
    let sig = &function.sig;
    let block = &function.block;
    let ret = match &sig.output {
        ReturnType::Default => quote! { () },
        ReturnType::Type(_, ty) => quote! { #ty },
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            ::trio::__private::wchan(
                #label,
                ::trio::__private::typed_body::<#ret, _>(async move #block),
            )
            .await
        }
    })
}
