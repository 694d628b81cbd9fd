//! Command-line interface: flag parsing and dispatch to the libraries. Nothing here decides
//! anything a library could.

use std::{path::PathBuf, process::ExitCode};

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
    }
}

fn crds(output_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    match output_dir {
        Some(dir) => {
            for path in crate::crds::write(&dir)? {
                println!("wrote {}", path.display());
            }
        }
        None => {
            for (_, content) in crate::crds::rendered()? {
                println!("---\n{content}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
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
                Ok(()) => println!("{label}: valid"),
                Err(flotilla_api::validate::ManifestError::NotFlotilla { .. }) => {
                    println!("{label}: not a Flotilla kind, skipped")
                }
                Err(error) => {
                    failed += 1;
                    println!("{label}: {error}");
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
