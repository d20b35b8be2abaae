//! The options of `#[trio::test(...)]`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Expr, Lit};

/// What `#[trio::test(...)]` was given.
#[derive(Default)]
pub(crate) struct TestOptions {
    /// `autojump` (threshold 0) or `autojump = seconds`, with the option's span.
    autojump: Option<(f64, Span)>,
    /// `clock = expr`.
    clock: Option<Expr>,
    /// `seed = n`.
    seed: Option<u64>,
}

impl TestOptions {
    /// Parses `autojump`, `autojump = 0.5`, `clock = EXPR`, `seed = N`, comma-separated.
    pub(crate) fn parse(args: TokenStream) -> syn::Result<Self> {
        let mut options = TestOptions::default();
        let parser = syn::meta::parser(|meta| {
            let span = syn::spanned::Spanned::span(&meta.path);
            if meta.path.is_ident("autojump") {
                if options.autojump.is_some() {
                    return Err(meta.error("duplicate option `autojump`"));
                }
                let threshold = if meta.input.peek(syn::Token![=]) {
                    let lit: Lit = meta.value()?.parse().map_err(|e| {
                        syn::Error::new(
                            e.span(),
                            "`autojump = ...` takes a threshold in seconds, like `autojump = 0.5`",
                        )
                    })?;
                    threshold_seconds(&lit)?
                } else {
                    0.0
                };
                options.autojump = Some((threshold, span));
            } else if meta.path.is_ident("clock") {
                if options.clock.is_some() {
                    return Err(meta.error("duplicate option `clock`"));
                }
                options.clock = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("seed") {
                if options.seed.is_some() {
                    return Err(meta.error("duplicate option `seed`"));
                }
                let lit: syn::LitInt = meta.value()?.parse()?;
                options.seed = Some(lit.base10_parse()?);
            } else {
                return Err(meta.error(
                    "unknown option; #[trio::test] takes `autojump`, `autojump = SECONDS`, \
                     `clock = EXPR` and `seed = N`",
                ));
            }
            Ok(())
        });
        syn::parse::Parser::parse2(parser, args)?;
        if let (Some((_, span)), Some(_)) = (&options.autojump, &options.clock) {
            return Err(syn::Error::new(
                *span,
                "`autojump` and `clock` can't be combined: `autojump` picks a MockClock; give \
                 your clock an autojump threshold instead",
            ));
        }
        Ok(options)
    }

    /// The expression building the test's `RunConfig`.
    pub(crate) fn config(&self) -> TokenStream {
        let mut config = quote! { ::trio::__private::test_config() };
        if let Some((threshold, _)) = self.autojump {
            // The threshold is a finite literal checked above; `MockClock` still checks it
            // (non-negative) and the test fails with its message if that check does not pass.
            config = quote! {
                #config.clock(
                    ::trio_test::MockClock::new()
                        .with_autojump_threshold(#threshold)
                        .expect("#[trio::test(autojump = SECONDS)]")
                )
            };
        }
        if let Some(clock) = &self.clock {
            config = quote! { #config.clock(#clock) };
        }
        if let Some(seed) = self.seed {
            config = quote! { #config.seed(#seed) };
        }
        config
    }
}

/// The threshold of `autojump = LIT`: a non-negative, finite number of seconds.
fn threshold_seconds(lit: &Lit) -> syn::Result<f64> {
    let value = match lit {
        Lit::Float(f) => f.base10_parse::<f64>()?,
        Lit::Int(i) => i.base10_parse::<u64>()? as f64,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "`autojump = ...` takes a threshold in seconds, like `autojump = 0.5`",
            ));
        }
    };
    if !value.is_finite() {
        return Err(syn::Error::new_spanned(
            lit,
            "the autojump threshold must be a finite number of seconds",
        ));
    }
    Ok(value)
}
