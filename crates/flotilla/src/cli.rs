//! Command-line interface: flag parsing and dispatch to the libraries. Nothing here decides
//! anything a library could.

use std::{net::IpAddr, path::PathBuf, process::ExitCode};

use anyhow::Context;

use clap::{Parser, Subcommand};

/// Flotilla: a Kubernetes-native multi-cluster control plane.
#[derive(Debug, Parser)]
#[command(name = "flotilla", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the CustomResourceDefinitions of every Flotilla kind as YAML.
    Crds {
        /// Write one file per CRD into this directory; print them all to stdout when absent.
        #[arg(long)]
        output_dir: Option<PathBuf>,
    },
    /// Run a local hub and member clusters in one process (the hub, its controllers and an
    /// embedded API server hosting every cluster).
    Up {
        /// Where state, certificates and the kubeconfig are kept.
        #[arg(long, default_value = ".tmp/flotilla")]
        data_dir: PathBuf,
        /// How many member clusters to run.
        #[arg(long, default_value_t = 2)]
        members: usize,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_address: IpAddr,
        /// The port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 6443)]
        port: u16,
        /// Keep all state in memory instead of under --data-dir.
        #[arg(long)]
        in_memory: bool,
        /// Controllers to run: `*` for all, `-name` to switch one off.
        #[arg(long, default_value = "*")]
        controllers: String,
    },
    /// Run the hub's controllers against an existing hub API server.
    Hub {
        /// Controllers to run: `*` for all, `-name` to switch one off.
        #[arg(long, default_value = "*")]
        controllers: String,
        /// Also install or update the Flotilla CRDs first.
        #[arg(long)]
        install_crds: bool,
    },
    /// Run the scheduler controller against a hub (KUBECONFIG or in-cluster config).
    Scheduler,
    /// Show where the scheduler would place a binding, without a server. FILE is a YAML stream
    /// of Cluster objects (with status) and one ResourceBinding or ClusterResourceBinding.
    Schedule {
        /// The YAML stream to read (`-` for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Output format: json, yaml or table.
        #[arg(short = 'o', long = "output", default_value = "table")]
        output: String,
    },
    /// Run the embedded Kubernetes-compatible API server.
    Apiserver {
        /// Where state, certificates, the token and the kubeconfig are kept.
        #[arg(long)]
        data_dir: PathBuf,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_address: IpAddr,
        /// The port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 6443)]
        port: u16,
        /// Keep objects in memory only; nothing survives a restart.
        #[arg(long)]
        in_memory: bool,
    },
    /// Check manifests (files or directories of YAML) against the Flotilla API and its rules.
    Validate {
        /// Files or directories to check.
        #[arg(short = 'f', long = "filename", required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Parses the arguments, runs the command and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Crds { output_dir } => crds(output_dir),
        Command::Validate { paths } => validate(&paths),
        Command::Up {
            data_dir,
            members,
            bind_address,
            port,
            in_memory,
            controllers,
        } => {
            let options = crate::up::UpOptions {
                data_dir,
                members,
                bind_address,
                port,
                in_memory,
                controllers,
            };
            crate::up::up(options).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Hub {
            controllers,
            install_crds,
        } => hub(&controllers, install_crds).await,
        Command::Scheduler => hub("scheduler", false).await,
        Command::Schedule { file, output } => schedule(&file, &output),
        Command::Apiserver {
            data_dir,
            bind_address,
            port,
            in_memory,
        } => {
            let config = flotilla_apiserver::Config {
                data_dir,
                bind_address,
                port,
                in_memory,
            };
            flotilla_apiserver::run(config).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs the named controllers against the hub in KUBECONFIG (or in-cluster) until ctrl-c.
async fn hub(controllers: &str, install_crds: bool) -> anyhow::Result<ExitCode> {
    let controllers = crate::controllers::select(controllers)?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to the hub")?;
    if install_crds {
        flotilla_controllers::fleet::install_crds(&client).await?;
    }
    tokio::select! {
        result = crate::controllers::run(client, &controllers) => result?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn crds(output_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let mut out = crate::output::Output::stdout();
    match output_dir {
        Some(dir) => {
            for path in crate::crds::write(&dir)? {
                out.println(format_args!("wrote {}", path.display()))?;
            }
        }
        None => {
            for (_, content) in crate::crds::rendered()? {
                out.println(format_args!("---\n{content}"))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn schedule(file: &std::path::Path, output: &str) -> anyhow::Result<ExitCode> {
    let format: flotilla_scheduler::OutputFormat = output.parse()?;
    let input = if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    match flotilla_scheduler::what_if(&input) {
        Ok(outcome) => {
            crate::output::Output::stdout()
                .print(flotilla_scheduler::format_outcome(&outcome, format)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut out = crate::output::Output::stdout();
    let mut failed = 0;
    let mut checked = 0;
    for path in paths {
        for document in crate::manifests::read(path)? {
            checked += 1;
            let label = format!(
                "{}: {} {}",
                document.path.display(),
                document
                    .object
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .unwrap_or("<no kind>"),
                document
                    .object
                    .pointer("/metadata/name")
                    .and_then(|n| n.as_str())
                    .unwrap_or("<no name>"),
            );
            match flotilla_api::validate::validate_manifest(&document.object) {
                Ok(()) => out.println(format_args!("{label}: valid"))?,
                Err(flotilla_api::validate::ManifestError::NotFlotilla { .. }) => {
                    out.println(format_args!("{label}: not a Flotilla kind, skipped"))?
                }
                Err(error) => {
                    failed += 1;
                    out.println(format_args!("{label}: {error}"))?;
                }
            }
        }
    }
    if checked == 0 {
        anyhow::bail!("no manifests found in {paths:?}");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
