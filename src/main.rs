use std::process::ExitCode;

fn main() -> ExitCode {
    // The configuration file goes into the environment first, while this is
    // the only thread: before logging reads RUST_LOG and before the runtime
    // starts its workers.
    let args: Vec<_> = std::env::args_os().collect();
    if let Err(e) = walletd::config::file::load(&args, &walletd::cli::variables()) {
        eprintln!("walletd: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = walletd::telemetry::init() {
        eprintln!("walletd: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("walletd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(walletd::cli::run());
    walletd::telemetry::shutdown();
    code
}
