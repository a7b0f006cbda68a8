//! The `tagsmith` command line: a thin layer over the `tagsmith` crate.
//!
//! Each subcommand lives in its own module with its clap `Args` and a `run` function.
//! Exit codes: 0 done (changed or not), 1 a failure or some object failed, 2 bad
//! command-line input (see [`exit`]).

mod controller;
mod exit;
mod policy;
mod run;
mod scan;
mod set;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// GitOps image automation: scan registries, pick tags like Flux, rewrite marked YAML.
#[derive(Parser)]
#[command(name = "tagsmith", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tag selection (Flux ImagePolicy).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Rewrite `$imagepolicy`-marked values under a path.
    Set(set::SetArgs),
    /// List the tags of one image in a registry.
    Scan(scan::ScanArgs),
    /// Run Flux's image automation from the CRDs under a path.
    Run(Box<run::RunArgs>),
    /// Find image references without markers and markers naming unknown policies.
    Check(run::CheckArgs),
    /// Run in the cluster in place of Flux's image-reflector-controller and
    /// image-automation-controller.
    Controller(Box<controller::ControllerArgs>),
    /// Print what a cluster needs to run `tagsmith controller`.
    Install(controller::InstallArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Structured logs on stderr (warnings by default; `RUST_LOG=tagsmith=debug` for more),
    // so stdout stays the report.
    // The controller is a service: what it does is its log (info); the rest print reports.
    let level = match cli.command {
        Command::Controller(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only for a person at a terminal: escape codes in a CI log or a file are noise.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    // A bug must not greet the user with a backtrace: one line, and where to report it.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        exit::warn_line(
            "internal error",
            &format!("{info}{location}; this is a bug in tagsmith, please report it"),
        );
    }));
    let result = match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
        Command::Set(args) => set::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Run(args) => run::run(*args),
        Command::Check(args) => run::check(args),
        Command::Controller(args) => controller::run(*args),
        Command::Install(args) => controller::install(args),
    };
    exit::report(result)
}
