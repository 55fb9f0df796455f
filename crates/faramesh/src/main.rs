//! `faramesh`: the command line of the Faramesh execution gatekeeper.

mod cli;
mod doctor;
mod env_file;
mod hook_commands;
mod init;
mod key_values;
mod log_check;
mod log_commands;
mod log_witness;
mod mcp_commands;
mod notify_commands;
mod output;
mod policy;
mod render;
mod serve;
mod server_commands;
mod table;
mod tokens;
mod verify;

use clap::Parser;
use std::process::ExitCode;

/// Requests allocate on the runtime's threads and the ledger writer frees on its own; glibc's
/// allocator serves that cross-thread traffic poorly (under submission load, a sixth of all CPU
/// time went to malloc and free). mimalloc keeps per-thread heaps and frees remotely for cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How a command ended, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything as expected.
    Success = 0,
    /// The command ran and found a problem (invalid policy, failing case, differences).
    Failure = 1,
    /// The command could not run (unreadable file, bad arguments, unusable input).
    Error = 2,
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    output::configure(&cli.global);
    let status = match &cli.command {
        cli::Command::Policy(cmd) => policy::run(cmd, &cli.global),
        cli::Command::Serve(args) => serve::run(args, &cli.global),
        cli::Command::Init => init::run(),
        cli::Command::InitDocker => init::docker(),
        cli::Command::Doctor => doctor::run(&cli.global),
        cli::Command::Mcp(command) => mcp_commands::run(command, &cli.global),
        cli::Command::Hook(command) => hook_commands::run(command, &cli.global),
        cli::Command::Log(command) => log_commands::run(command, &cli.global),
        cli::Command::Notify(command) => notify_commands::run(command, &cli.global),
        cli::Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                *shell,
                &mut cli::Cli::command(),
                "faramesh",
                &mut std::io::stdout(),
            );
            Ok(Status::Success)
        }
        other => server_commands::run(other, &cli.global),
    };
    match status {
        Ok(status) => ExitCode::from(status as u8),
        Err(err) => {
            output::error(format_args!("{err:#}"));
            ExitCode::from(Status::Error as u8)
        }
    }
}
