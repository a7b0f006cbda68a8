//! `tagsmith controller` (the in-cluster controller, in place of Flux's image controllers)
//! and `tagsmith install --export` (the manifests it needs): thin wrappers over
//! `tagsmith-controller`.

use crate::exit::bad_input;
use std::path::PathBuf;
use std::process::ExitCode;
use tagsmith_controller::install::{export, InstallOptions};
use tagsmith_controller::{ControllerError, ControllerOptions};

/// `tagsmith controller`.
#[derive(clap::Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    options: ControllerOptions,
}

/// `tagsmith install`.
#[derive(clap::Args)]
pub struct InstallArgs {
    /// Print the manifests (ServiceAccount, RBAC, Deployment) instead of applying them
    /// (tagsmith does not apply anything itself: pipe to `kubectl apply -f -`).
    #[arg(long, required = true)]
    export: bool,
    /// The controller's namespace.
    #[arg(long, default_value = "flux-system")]
    namespace: String,
    /// The container image.
    #[arg(long)]
    image: Option<String>,
    /// Replicas (leader election picks one to work).
    #[arg(long, default_value_t = 2)]
    replicas: u32,
    /// For clusters without Flux: also print the Namespace and Flux's CRDs (image and
    /// GitRepository) from --crds-dir.
    #[arg(long)]
    with_crds: bool,
    /// Where Flux's CRD files are (default: $TAGSMITH_TOOLS_DIR/crds, as `make setup-tools`
    /// generates them).
    #[arg(long, value_name = "DIR")]
    crds_dir: Option<PathBuf>,
}

/// Runs the controller until SIGTERM or SIGINT; exits at once when the Lease is lost.
pub fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    args.options.validate().map_err(bad_input)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signals = shutdown.clone();
    runtime.spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing reconciliations in flight");
        signals.cancel();
    });
    match runtime.block_on(tagsmith_controller::run(args.options, shutdown)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ ControllerError::LeaderElectionLost { .. }) => {
            // As Flux's controllers do: leave at once, git work in flight included, so
            // nothing more is pushed by a replica that no longer leads.
            crate::exit::warn_line("error", &e.to_string());
            std::process::exit(i32::from(crate::exit::FAILURE));
        }
        Err(e @ (ControllerError::Config { .. } | ControllerError::Kubeconfig { .. })) => {
            Err(bad_input(e))
        }
        Err(e) => Err(e.into()),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Prints the manifests.
pub fn install(args: InstallArgs) -> anyhow::Result<ExitCode> {
    let defaults = InstallOptions::default();
    let options = InstallOptions {
        namespace: args.namespace,
        image: args.image.unwrap_or(defaults.image),
        replicas: args.replicas,
        with_crds: args.with_crds,
        crds_dir: args.crds_dir.unwrap_or(defaults.crds_dir),
    };
    tagsmith::names::validate_namespace(&options.namespace)
        .map_err(|e| bad_input(anyhow::anyhow!("--namespace {e}")))?;
    let text = export(&options).map_err(bad_input)?;
    crate::exit::out(&text)?;
    Ok(ExitCode::SUCCESS)
}
