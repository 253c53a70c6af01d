use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = walletd::telemetry::init() {
        eprintln!("walletd: {e}");
        return ExitCode::from(2);
    }
    let code = walletd::cli::run().await;
    walletd::telemetry::shutdown();
    code
}
