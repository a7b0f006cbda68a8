//! Exit codes, stdout that survives a closed pipe, and the one-line error report shared by
//! every subcommand.
//!
//! Exit codes: 0 done; 1 a failure (a registry, a push, or some object failed after the
//! rest was done); 2 bad command-line input (an invalid flag value, an unreadable file
//! named on the command line, a configuration that does not hold together).

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

/// Exit code for a run that failed, or in which some object failed.
pub const FAILURE: u8 = 1;
/// Exit code for bad command-line input.
pub const BAD_INPUT: u8 = 2;
/// Exit code when stdout was closed under us (`tagsmith ... | head -1`): what a shell
/// reports for a process ended by SIGPIPE, without the signal's noise.
pub const CLOSED_STDOUT: u8 = 141;

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

/// Stdout was closed by the reader: end quietly.
#[derive(Debug)]
struct ClosedStdout;

impl fmt::Display for ClosedStdout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for ClosedStdout {}

/// Writes `text` to stdout; a closed pipe becomes a quiet exit instead of a panic.
pub fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(ClosedStdout))
        }
        Err(e) => Err(e.into()),
    }
}

/// `println!` to stdout through [`out`]: `outln!(...)?`.
#[macro_export]
macro_rules! outln {
    () => { $crate::exit::out("\n") };
    ($($arg:tt)*) => { $crate::exit::out(&format!("{}\n", format_args!($($arg)*))) };
}

/// One line on stderr, control characters escaped and the length bounded: error text can
/// carry repository or registry content.
pub fn warn_line(prefix: &str, text: &str) {
    eprintln!(
        "tagsmith: {prefix}: {}",
        tagsmith::error::one_line(text, tagsmith::error::MAX_MESSAGE_CHARS)
    );
}

/// Prints one clear line on stderr for an error and picks the exit code.
pub fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) if err.downcast_ref::<ClosedStdout>().is_some() => ExitCode::from(CLOSED_STDOUT),
        Err(err) => {
            warn_line("error", &format!("{err:#}"));
            if err.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(BAD_INPUT)
            } else {
                ExitCode::from(FAILURE)
            }
        }
    }
}
