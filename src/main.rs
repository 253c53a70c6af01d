use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    walletd::telemetry::init();
    walletd::cli::run().await
}
