//! The options of `#[trio::test(...)]`, checked at compile time.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Expr, Lit, UnOp};

use crate::manifest::{self, TrioTest};

const OPTIONS: &str = "#[trio::test] takes `autojump`, `autojump = SECONDS`, `clock = EXPR` and \
                       `seed = N`";
const AUTOJUMP_LITERAL: &str =
    "`autojump = ...` takes a number of seconds written as a literal, like `autojump = 0.5`";
const SEED: &str = "a seed is a non-negative integer that fits in 64 bits, like `seed = 42`";

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
            let span = meta.path.span();
            if meta.path.is_ident("autojump") {
                if options.autojump.is_some() {
                    return Err(meta.error("duplicate option `autojump`"));
                }
                if meta.input.peek(syn::token::Paren) {
                    return Err(meta.error(
                        "write the autojump threshold as `autojump = SECONDS`, like \
                         `autojump = 0.5`",
                    ));
                }
                let threshold = if meta.input.peek(syn::Token![=]) {
                    threshold_seconds(&option_value(&meta, AUTOJUMP_LITERAL)?)?
                } else {
                    0.0
                };
                options.autojump = Some((threshold, span));
            } else if meta.path.is_ident("clock") {
                if options.clock.is_some() {
                    return Err(meta.error("duplicate option `clock`"));
                }
                if !meta.input.peek(syn::Token![=]) {
                    return Err(meta.error(
                        "`clock` takes a value: `clock = EXPR`, like \
                         `clock = trio_test::MockClock::new()`",
                    ));
                }
                options.clock = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("seed") {
                if options.seed.is_some() {
                    return Err(meta.error("duplicate option `seed`"));
                }
                options.seed = Some(seed(&option_value(&meta, SEED)?)?);
            } else {
                return Err(meta.error(format_args!("unknown option; {OPTIONS}")));
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
        let autojump_span = options.autojump.map(|(_, span)| span);
        if let Some(span) = autojump_span.filter(|_| trio_test_missing()) {
            return Err(syn::Error::new(
                span,
                "`autojump` runs the test on `trio_test::MockClock`, and this crate does not \
                 depend on trio-test: add it to the dev-dependencies (`cargo add --dev \
                 trio-test`)",
            ));
        }
        Ok(options)
    }

    /// The expression building the test's `RunConfig`.
    pub(crate) fn config(&self) -> TokenStream {
        let mut config = quote! { ::trio::__private::test_config() };
        if let Some((threshold, span)) = self.autojump {
            // `MockClock` checks the threshold too (a `Result`); the literal was checked above
            // (finite, not negative), so that check passes.
            config = quote_spanned! {span=>
                #config.clock(
                    ::trio_test::MockClock::new()
                        .with_autojump_threshold(#threshold)
                        .expect("#[trio::test(autojump = SECONDS)]: a threshold of 0 or more")
                )
            };
        }
        if let Some(clock) = &self.clock {
            config = quote_spanned! {clock.span()=>
                ::trio::__private::test_clock(#config, #clock)
            };
        }
        if let Some(seed) = self.seed {
            config = quote! { #config.seed(#seed) };
        }
        config
    }
}

/// Whether the crate's manifest shows that it does not depend on trio-test.
fn trio_test_missing() -> bool {
    manifest::trio_test_dependency() == TrioTest::Missing
}

/// The `EXPR` of `name = EXPR`; `message` says what is expected when the `= EXPR` is missing.
fn option_value(meta: &ParseNestedMeta<'_>, message: &str) -> syn::Result<Expr> {
    if !meta.input.peek(syn::Token![=]) {
        return Err(meta.error(message));
    }
    meta.value()?.parse()
}

/// A numeric literal, possibly negated: its value and whether it was negated. `None` for
/// anything else.
fn numeric_literal(expr: &Expr) -> Option<(&Lit, bool)> {
    match expr {
        Expr::Lit(lit) => Some((&lit.lit, false)),
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => match &*unary.expr {
            Expr::Lit(lit) => Some((&lit.lit, true)),
            _ => None,
        },
        Expr::Paren(paren) => numeric_literal(&paren.expr),
        Expr::Group(group) => numeric_literal(&group.expr),
        _ => None,
    }
    .filter(|(lit, _)| matches!(lit, Lit::Int(_) | Lit::Float(_)))
}

/// The threshold of `autojump = EXPR`: a literal, non-negative, finite number of seconds.
fn threshold_seconds(expr: &Expr) -> syn::Result<f64> {
    let Some((lit, negated)) = numeric_literal(expr) else {
        return Err(syn::Error::new_spanned(expr, AUTOJUMP_LITERAL));
    };
    let value = match lit {
        Lit::Float(f) => f.base10_parse::<f64>()?,
        Lit::Int(i) => i.base10_parse::<f64>()?,
        _ => return Err(syn::Error::new_spanned(expr, AUTOJUMP_LITERAL)),
    };
    if negated && value != 0.0 {
        return Err(syn::Error::new_spanned(
            expr,
            "the autojump threshold can't be negative: it is a number of seconds of idleness, \
             0 or more, like `autojump = 0.5`",
        ));
    }
    if !value.is_finite() {
        return Err(syn::Error::new_spanned(
            expr,
            "the autojump threshold must be a finite number of seconds",
        ));
    }
    Ok(value)
}

/// The seed of `seed = EXPR`: an integer literal that fits in a `u64`.
fn seed(expr: &Expr) -> syn::Result<u64> {
    match numeric_literal(expr) {
        Some((Lit::Int(int), false)) => int
            .base10_parse::<u64>()
            .map_err(|_| syn::Error::new_spanned(expr, SEED)),
        _ => Err(syn::Error::new_spanned(expr, SEED)),
    }
}
