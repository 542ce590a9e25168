use clap::Parser;

fn main() -> std::process::ExitCode {
    match churn::cli::run(churn::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
