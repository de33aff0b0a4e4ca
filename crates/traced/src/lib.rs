//! `#[traced]` on a module's use case: a `tracing` span named `<crate>.<function>` carrying
//! `module = "<crate>"`, its arguments left out (they may hold personal data). Every module's
//! spans take this one shape, derived here instead of spelled at each function; traces and
//! dashboards read these names (`baskets.checkout`, `ordering.execute_in`).

use proc_macro::{TokenStream, TokenTree};

/// Wraps the function in a span named `<crate>.<function>` with `module = "<crate>"`.
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        return error("#[traced] takes no arguments: the span's name and module are derived");
    }
    let Some(function) = function_name(&item) else {
        return error("#[traced] goes on a function");
    };
    // The crate being compiled: rustc runs the macro with that crate's Cargo environment.
    let krate = std::env::var("CARGO_CRATE_NAME").unwrap_or_default();
    let span = format!(
        "#[::tracing::instrument(name = \"{krate}.{function}\", skip_all, fields(module = \"{krate}\"))]"
    );
    match span.parse::<TokenStream>() {
        Ok(mut traced) => {
            traced.extend(item);
            traced
        }
        Err(_) => error("#[traced] could not name the span"),
    }
}

/// The identifier after the first `fn`.
fn function_name(item: &TokenStream) -> Option<String> {
    let mut tokens = item.clone().into_iter();
    while let Some(token) = tokens.next() {
        if matches!(&token, TokenTree::Ident(ident) if ident.to_string() == "fn") {
            return match tokens.next() {
                Some(TokenTree::Ident(name)) => Some(name.to_string()),
                _ => None,
            };
        }
    }
    None
}

fn error(message: &str) -> TokenStream {
    format!("::core::compile_error!({message:?});")
        .parse()
        .unwrap_or_default()
}
