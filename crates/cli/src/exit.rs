//! Exit codes and the one-line error report shared by every subcommand.

use std::fmt;
use std::process::ExitCode;

/// Exit code for a run that failed (registry down, push rejected, ...).
pub const FAILURE: u8 = 1;
/// Exit code for bad input (invalid regex or range, broken YAML, unknown policy, ...).
pub const BAD_INPUT: u8 = 2;

/// Wraps an error that came from the user's input, so that it exits with [`BAD_INPUT`].
#[derive(Debug)]
pub struct BadInput(pub anyhow::Error);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for BadInput {}

/// Marks an error as bad input: `some_call().map_err(bad_input)?`.
pub fn bad_input(err: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(BadInput(err.into()))
}

/// Prints one clear line on stderr for an error and picks the exit code.
pub fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tagsmith: error: {err:#}");
            if err.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(BAD_INPUT)
            } else {
                ExitCode::from(FAILURE)
            }
        }
    }
}
