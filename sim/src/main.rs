//! The `raftsim` binary: parse the command line, call the library, exit with its code.

use clap::Parser;
use raftsim::cli::{execute, Cli, EXIT_USAGE};
use raftsim::run::{CATCHING_PANICS, LAST_PANIC_LOCATION};

/// mimalloc: the simulator allocates small short-lived buffers (message entries, ops) on every
/// step; glibc malloc spent ~8% of fuzz-standard in malloc/free, mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // A panic inside a run is caught and reported as a failure with its seed and replay
    // command; the hook only records where it happened. Any other panic prints as usual.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CATCHING_PANICS.with(|c| c.get()) {
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            LAST_PANIC_LOCATION.with(|l| *l.borrow_mut() = at);
        } else {
            default_hook(info);
        }
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    std::process::exit(execute(cli));
}
