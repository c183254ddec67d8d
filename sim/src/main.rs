//! The `raftsim` command line. Parsing only: everything else lives in the library.

use clap::Parser;

/// raftsim: a deterministic simulator for replicated key-value stores.
#[derive(Parser, Debug)]
#[command(name = "raftsim", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
