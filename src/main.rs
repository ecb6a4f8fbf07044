//! `shiplog`: parse the command line and hand it to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = shiplog::config::Cli::parse();
    match shiplog::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line: the error and its causes, never a backtrace.
            eprintln!("shiplog: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
