//! Entry point: parse the command line, load settings, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use portcullis::cli::{self, Cli, Command};
use portcullis::config::Settings;
use portcullis::telemetry;

/// mimalloc instead of glibc's malloc, where glibc's malloc and free were ~6% of a token request's
/// CPU: with whole-program LTO (Cargo.toml) an anonymous token took ~6% less CPU; either alone
/// was within this host's noise. It keeps 8–26 MiB more resident (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    if !matches!(cli.command, Command::Serve) {
        die_quietly_on_sigpipe();
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("portcullis: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let level = match cli.command {
        Command::Serve => settings.log.level.as_str(),
        _ => "warn",
    };
    let logs = telemetry::init(settings.log.format, level);
    let result = actix_web::rt::System::new().block_on(cli::run(&settings, cli.command));
    // Every log line is out before the last message and the exit.
    drop(logs);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {}", cli::describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// Prints clap's message for a command line it refused, with the control characters of the
/// operator's input escaped (clap quotes a refused value as typed, so an escape sequence in it would
/// reach the terminal), and exits as clap would. Help and version go out as clap writes them.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        error.exit();
    }
    let message: String = error
        .render()
        .to_string()
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect();
    eprint!("{message}");
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

/// Lets an operator command end like other Unix tools when the reader of its output goes away
/// (`portcullis grant list | head -1`): killed by SIGPIPE, silently, exit status 141 in a shell. Rust
/// ignores SIGPIPE, so printing to the closed pipe would panic instead. `serve` keeps ignoring it: a
/// client that hangs up must never stop the server.
fn die_quietly_on_sigpipe() {
    // SAFETY: `signal` with `SIG_DFL` installs no handler of ours; it runs before any other thread
    // exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
