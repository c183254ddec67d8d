//! Scenarios: short, replayable scripts that set up a cluster, drive it through faults and
//! client operations, and check expectations along the way. The language is documented in
//! `scenarios/README.md`.
//!
//! - [`ast`]: the syntax tree.
//! - [`lexer`], [`parser`]: text → [`ast::Script`], with file:line:col errors.
//! - [`interpreter`]: runs a script on the simulator.
//! - [`embedded`]: the harness scenarios compiled into the binary.

pub mod ast;
pub mod embedded;
pub mod interpreter;
pub mod lexer;
pub mod parser;

pub use interpreter::{run_script, ScenarioFailure, ScenarioOutcome};
pub use parser::{parse, ParseError};
