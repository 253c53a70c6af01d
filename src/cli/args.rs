//! Parsing the command line and the environment, with errors that name what
//! the operator actually set: clap reports a bad value by its flag
//! (`--kyc-mode`) even when it came from `WALLETD_KYC_MODE`, which is not
//! what anyone deploying walletd wrote.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};

use super::Cli;

/// The parsed command line and its matches (for `config check`, which shows
/// where each value came from).
pub fn parse() -> (Cli, ArgMatches) {
    match try_parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(Failure::Clap(e)) => e.exit(),
        Err(Failure::Env(line)) => {
            eprintln!("walletd: {line}");
            std::process::exit(2);
        }
    }
}

pub enum Failure {
    /// Help, version, or an error about the command line itself.
    Clap(clap::Error),
    /// A value from the environment that does not parse: one line naming
    /// the variable.
    Env(String),
}

pub fn try_parse(args: Vec<OsString>) -> Result<(Cli, ArgMatches), Failure> {
    let command = Cli::command();
    let matches = command
        .clone()
        .try_get_matches_from(&args)
        .map_err(|e| explain(&command, &args, e))?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| explain(&command, &args, e))?;
    Ok((cli, matches))
}

/// A bad value of an argument that was not on the command line came from its
/// environment variable: say so by the variable's name.
fn explain(command: &Command, args: &[OsString], e: clap::Error) -> Failure {
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return Failure::Clap(e);
    }
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else {
        return Failure::Clap(e);
    };
    let Some((long, var)) = env_arg(command, shown) else {
        return Failure::Clap(e);
    };
    let on_command_line = args.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == format!("--{long}") || a.starts_with(&format!("--{long}="))
    });
    if on_command_line {
        return Failure::Clap(e);
    }
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => format!(" {v:?}"),
        _ => String::new(),
    };
    let why = match e.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) => format!("expected one of {}", valid.join(", ")),
        _ => std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "not a valid value".into()),
    };
    Failure::Env(format!("{var}: invalid value{value}: {why}"))
}

/// The long flag and environment variable of the argument clap shows as
/// `shown` (`--kyc-mode <KYC_MODE>`), searched through every subcommand.
fn env_arg(command: &Command, shown: &str) -> Option<(String, String)> {
    let flag = shown.split_whitespace().next()?.strip_prefix("--")?;
    let own = command.get_arguments().find_map(|arg| {
        let long = arg.get_long()?;
        let var = arg.get_env()?;
        (long == flag).then(|| (long.to_string(), var.to_string_lossy().into_owned()))
    });
    own.or_else(|| {
        command
            .get_subcommands()
            .find_map(|sub| env_arg(sub, shown))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_flag_error_stays_a_flag_error() {
        match try_parse(args(&["walletd", "--kyc-mode", "bogus", "serve"])) {
            Err(Failure::Clap(e)) => assert!(e.to_string().contains("--kyc-mode")),
            _ => panic!("expected clap's own error"),
        }
        match try_parse(args(&["walletd", "--max-body=x", "serve"])) {
            Err(Failure::Clap(e)) => assert!(e.to_string().contains("--max-body")),
            _ => panic!("expected clap's own error"),
        }
    }

    #[test]
    fn finds_the_variable_of_a_flag() {
        let c = Cli::command();
        assert_eq!(
            env_arg(&c, "--kyc-mode <KYC_MODE>"),
            Some(("kyc-mode".into(), "WALLETD_KYC_MODE".into()))
        );
        assert_eq!(
            env_arg(&c, "--new-key <NEW_KEY>"),
            Some(("new-key".into(), "WALLETD_NEW_MASTER_KEY".into()))
        );
        assert_eq!(env_arg(&c, "<HANDLE>"), None);
    }
}
