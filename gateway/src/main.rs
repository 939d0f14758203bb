//! `carbonx`: the carbon allowance registry and exchange server, and its operator CLI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use server::config::{Config, LogFormat, Overrides};

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
        /// Data directory (default: a fresh temporary directory, removed afterwards).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Covered entities (power, steel, cement and aluminium in the national mix).
        #[arg(long, default_value_t = 3_700)]
        entities: usize,
        /// Member firms trading.
        #[arg(long, default_value_t = 40)]
        members: usize,
        /// Trading days before the deadline.
        #[arg(long, default_value_t = 5)]
        days: u32,
    },
    /// Operate a running server over gRPC: status, book, trading day, funds, orders,
    /// reconciliation (address and token from flags or CARBONX_ADDR / CARBONX_TOKEN).
    Ctl {
        #[command(flatten)]
        connection: gateway::ctl::Connection,
        #[command(subcommand)]
        command: gateway::ctl::Ctl,
    },
    /// Print generated documentation: `docs api` is the API reference (docs/API.md).
    Docs {
        #[command(subcommand)]
        which: DocsWhich,
    },
    /// Inspect the engine journal of a data directory.
    Journal {
        #[command(subcommand)]
        action: JournalAction,
    },
}

#[derive(Debug, Subcommand)]
enum DocsWhich {
    /// The API reference from the code's tables and the protos' comments (docs/API.md).
    Api,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    overrides: Overrides,
    /// Validate the configuration, print it, and exit.
    #[arg(long)]
    check_config: bool,
}

#[derive(Debug, Subcommand)]
enum JournalAction {
    /// Check every record's checksum and the sequence from the first segment present
    /// (segments recovery no longer needs are moved to `journal/archive`) to the end.
    Verify {
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        /// A journal directory to read instead of `<data>/journal` (e.g. an archive).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print records from a sequence number.
    Dump {
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        /// A journal directory to read instead of `<data>/journal` (e.g. an archive).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// First sequence to print (default: the first one present).
        #[arg(long)]
        from: Option<u64>,
    },
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match Config::load(&args.overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("carbonx: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        println!("{config:#?}");
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    init_logs(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("carbonx-io")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("carbonx: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dashboard = config.dashboard_listen;
    let result = runtime.block_on(server::server::serve(
        config,
        move |running| {
            use std::io::Write;
            println!("carbonx listening on {}", running.addr);
            if let Some(m) = running.metrics_addr {
                println!("carbonx metrics on http://{m}/metrics");
            }
            // The dashboard is the binary's, beside the server, on the server's state.
            if let Some(addr) = dashboard {
                match dashboard::start(addr, running.ctx.clone()) {
                    Ok(d) => println!("carbonx dashboard on http://{d}/login"),
                    Err(e) => eprintln!("carbonx: dashboard not started: {e}"),
                }
            }
            let _ = std::io::stdout().flush();
        },
        None,
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carbonx: {e}");
            ExitCode::FAILURE
        }
    }
}

fn journal(action: JournalAction) -> ExitCode {
    let (data, dir, from, dump) = match action {
        JournalAction::Verify { data, dir } => (data, dir, None, false),
        JournalAction::Dump { data, dir, from } => (data, dir, from, true),
    };
    let dir = dir.unwrap_or_else(|| data.join("journal"));
    // What start-up would find (a torn tail, damage, an end before the durable mark), with
    // the same reading of the last segment.
    let report = match journal::inspect(&dir) {
        Ok((report, _)) => report,
        Err(e) => {
            eprintln!("journal {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    // From the first segment present unless asked (earlier ones may be archived).
    let from = from.unwrap_or_else(|| journal::first_seq(&dir).unwrap_or(1));
    let mut count = 0u64;
    let mut last = 0u64;
    let result = journal::replay(&dir, from, |record| {
        if dump {
            match record {
                journal::Record::Engine(c) => {
                    println!("{} {} {:?}", c.seq, c.timestamp_ns, c.kind);
                }
                journal::Record::Registry {
                    seq,
                    timestamp_ns,
                    entry,
                } => println!("{seq} {timestamp_ns} {entry:?}"),
            }
        }
        count += 1;
        last = record.seq();
        Ok(())
    });
    match result {
        Ok(_) => {
            let torn = match &report.truncated {
                Some((segment, offset, bytes)) => format!(
                    "; a torn tail of {bytes} bytes at {}:{offset} (never acknowledged; start-up cuts it)",
                    segment.display()
                ),
                None => String::new(),
            };
            eprintln!(
                "journal {}: {} segments, {count} records read from sequence {from}, last sequence {last}, durable mark {}{torn}: OK",
                dir.display(),
                report.segments,
                report.durable_mark
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("journal {}: {count} records read, then: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Demo {
            seed,
            data,
            entities,
            members,
            days,
        } => {
            let options = gateway::demo::DemoOptions {
                seed,
                data,
                entities,
                members,
                days,
            };
            match gateway::demo::run(&options, false) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("carbonx demo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Journal { action } => journal(action),
        Command::Docs {
            which: DocsWhich::Api,
        } => match gateway::apidoc::api_reference() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("carbonx docs: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Ctl {
            connection,
            command,
        } => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("carbonx: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(gateway::ctl::run(&connection, &command)) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("carbonx: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
