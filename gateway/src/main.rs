//! `carbonx`: the carbon allowance registry and exchange server, and its operator CLI.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// carbonx: national carbon allowance registry and trading-matching engine.
#[derive(Debug, Parser)]
#[command(name = "carbonx", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: gRPC API over the matching engine and the RocksDB registry.
    Serve(ServeArgs),
    /// Play one compliance year of a synthetic market on an embedded server and report.
    Demo {
        /// Seed of the synthetic market (the same seed gives the same report).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Data directory (default: a fresh temporary directory).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Inspect the engine journal of a data directory.
    Journal {
        #[command(subcommand)]
        action: JournalAction,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Data directory: the registry's RocksDB and the engine journal live here.
    #[arg(long, env = "CARBONX_DATA", default_value = "./data")]
    data: PathBuf,
    /// gRPC listen address.
    #[arg(long, env = "CARBONX_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Configuration file (TOML).
    #[arg(long, env = "CARBONX_CONFIG")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

#[derive(Debug, Subcommand)]
enum JournalAction {
    /// Check every record's checksum and the sequence from start to end.
    Verify {
        #[arg(long, default_value = "./data")]
        data: PathBuf,
    },
    /// Print records from a sequence number.
    Dump {
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            eprintln!(
                "carbonx serve: the gRPC gateway is not built yet (issue 5); data dir {}, listen {}",
                args.data.display(),
                args.listen
            );
            ExitCode::FAILURE
        }
        Command::Demo { .. } => {
            eprintln!("carbonx demo: not built yet (issue 9)");
            ExitCode::FAILURE
        }
        Command::Journal { .. } => {
            eprintln!("carbonx journal: not built yet (issue 8)");
            ExitCode::FAILURE
        }
    }
}
