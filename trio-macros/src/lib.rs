//! Placeholder until the macros land (written by the macros work; overwrite freely).
use proc_macro::TokenStream;
/// placeholder
#[proc_macro_attribute]
pub fn main(_a: TokenStream, i: TokenStream) -> TokenStream { i }
/// placeholder
#[proc_macro_attribute]
pub fn test(_a: TokenStream, i: TokenStream) -> TokenStream { i }
/// placeholder
#[proc_macro_attribute]
pub fn checkpoint(_a: TokenStream, i: TokenStream) -> TokenStream { i }
/// placeholder
#[proc_macro_attribute]
pub fn wchan(_a: TokenStream, i: TokenStream) -> TokenStream { i }
