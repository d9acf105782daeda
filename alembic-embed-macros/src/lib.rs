//! `embed_migrations!`: a thin shim. It parses its arguments with `syn`,
//! asks `alembic_chain::embed::prepare` (the CLI's loader, checksum and
//! graph) for the checked chain, and writes it out as `'static` data; a
//! broken chain becomes a `compile_error!` on the macro's argument.
//!
//! Use it through `alembic-embed`, which re-exports it and holds the types
//! the expansion names.

use std::path::{Path, PathBuf};

use alembic_chain::embed::{prepare, Packer, Prepared, Request};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{LitBool, LitStr, Token};

/// Compiles a revision chain into the crate as `mod migrations`; see
/// `alembic_embed::embed_migrations!` for the documentation.
#[proc_macro]
pub fn embed_migrations(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let args = match syn::parse::<Args>(input) {
        Ok(args) => args,
        Err(e) => return e.to_compile_error().into(),
    };
    expand(args).unwrap_or_else(|e| e.to_compile_error()).into()
}

/// `["path"] [, allow_multiple_heads = true]`
struct Args {
    path: Option<LitStr>,
    allow_multiple_heads: bool,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args {
            path: None,
            allow_multiple_heads: false,
        };
        if input.peek(LitStr) {
            args.path = Some(input.parse()?);
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        while !input.is_empty() {
            let key: syn::Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            match key.to_string().as_str() {
                "allow_multiple_heads" => {
                    args.allow_multiple_heads = input.parse::<LitBool>()?.value;
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown option `{other}`: the options are a path (\"migrations\") and `allow_multiple_heads = true`"
                        ),
                    ))
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

fn expand(args: Args) -> syn::Result<TokenStream> {
    let span = args
        .path
        .as_ref()
        .map_or_else(Span::call_site, LitStr::span);
    // The override exists for compile-fail tests, which trybuild builds in
    // a generated package of its own (its author's advice, trybuild#202).
    let manifest_dir = std::env::var_os("ALEMBIC_EMBED_MANIFEST_DIR")
        .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR"))
        .map(PathBuf::from)
        .ok_or_else(|| syn::Error::new(span, "CARGO_MANIFEST_DIR is not set: build with cargo"))?;
    let request = Request {
        manifest_dir,
        path: args.path.as_ref().map(LitStr::value),
        allow_multiple_heads: args.allow_multiple_heads,
    };
    let prepared = prepare(&request).map_err(|e| syn::Error::new(span, e.to_string()))?;
    Ok(render(&prepared))
}

fn render(p: &Prepared) -> TokenStream {
    let count = p.map.all_revisions().count();
    // Everything in two literals: a static of structs holding `&str`s
    // costs a relocation per pointer (see `alembic_chain::packed`).
    let packed = Packer::pack(&p.map, |rev| p.display_path(&rev.path));
    let text = LitStr::new(&packed.text, Span::call_site());
    let table = proc_macro2::Literal::byte_string(&packed.table);
    // Each file is included (and discarded: an unused constant is not in the
    // binary) so that rustc records it and cargo rebuilds when it changes.
    let files = p.files.iter().map(|f| path_literal(f));
    let version_table = &p.version_table;
    let schema = option(p.version_table_schema.as_deref());
    let per_migration = p.transaction_per_migration;
    let source = p.display_path(&p.script_location);
    let doc = format!(
        "The revision chain of `{source}` ({count} revisions), compiled in by `alembic_embed::embed_migrations!`."
    );
    quote! {
        #[doc = #doc]
        pub mod migrations {
            const _: &[&[u8]] = &[#(::core::include_bytes!(#files)),*];

            static PACKED: ::alembic_embed::embedded::PackedChain =
                ::alembic_embed::embedded::PackedChain { text: #text, table: #table };

            /// The embedded chain.
            pub static CHAIN: ::alembic_embed::Chain = ::alembic_embed::Chain::new(
                &PACKED,
                ::alembic_embed::embedded::EmbeddedSettings {
                    version_table: #version_table,
                    version_table_schema: #schema,
                    transaction_per_migration: #per_migration,
                    package: ::core::concat!(
                        ::core::env!("CARGO_PKG_NAME"),
                        " ",
                        ::core::env!("CARGO_PKG_VERSION")
                    ),
                },
                #source,
            );

            /// A runner for the embedded chain, with the default policies:
            /// refuse an edited applied revision, refuse a database ahead of
            /// this binary.
            pub fn runner() -> ::alembic_embed::Runner {
                ::alembic_embed::Runner::new(&CHAIN)
            }
        }
    }
}

fn option(value: Option<&str>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

fn path_literal(path: &Path) -> LitStr {
    LitStr::new(&path.to_string_lossy(), Span::call_site())
}
