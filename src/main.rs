use clap::Parser;

// mimalloc: the server allocates many small strings and maps per request; it is measurably faster
// there than the system allocator (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = churn::cli::Cli::parse();
    if !matches!(cli.command, churn::cli::Command::Serve(_)) {
        // A one-shot command piped into `head` should stop quietly when the pipe closes, as
        // command-line tools do, instead of panicking on the failed write. The server keeps
        // Rust's default (SIGPIPE ignored), so it never dies from a peer going away.
        #[cfg(unix)]
        // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match churn::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
