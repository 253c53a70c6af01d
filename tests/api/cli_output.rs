//! Issue 12, operators: what the command line prints. Progress of long
//! commands when stderr is not a terminal, and `--help` of every command.

use std::process::{Command, Stdio};

use crate::helpers::{random_master_key, run_cli, spawn_app_on, Backend, TestDb};

/// `replay` and `rotate-master-key` with stderr piped (as in CI or under a
/// service manager): a plain final progress line, no escape codes.
#[actix_web::test]
async fn long_commands_print_plain_progress_lines_when_not_on_a_terminal() {
    let Some(tdb) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let master = random_master_key();
    let app = spawn_app_on(tdb, Some(master.clone())).await;
    for user in ["progress-a", "progress-b", "progress-c"] {
        app.create_wallet(user).await;
    }
    let tdb = app.shutdown().await;
    let env = [
        ("DATABASE_URL", tdb.url.as_str()),
        ("WALLETD_MASTER_KEY", master.as_str()),
    ];

    let (ok, out, err) = run_cli(&["replay"], &env).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("rebuilt"), "{out}");
    let last = final_line(&err, "replay: ");
    // Three wallets, one event each.
    assert!(last.starts_with("replay: 3/3 events, "), "{err}");
    assert!(last.contains("/s, done in "), "{err}");

    let (ok, out, err) = run_cli(&["rotate-master-key"], &env).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("re-wrapped 3 keys"), "{out}");
    let last = final_line(&err, "rotate-master-key: ");
    assert!(last.starts_with("rotate-master-key: 3/3 keys, "), "{err}");
    assert!(last.contains("/s, done in "), "{err}");
}

/// The last stderr line starting with `prefix`, after checking that stderr
/// has no terminal escape codes at all.
fn final_line(stderr: &str, prefix: &str) -> String {
    assert!(!stderr.contains('\u{1b}'), "escape codes: {stderr:?}");
    assert!(!stderr.contains('\r'), "carriage returns: {stderr:?}");
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{stderr}"))
        .to_string()
}

/// `walletd <command…> --help` for every command and subcommand, found by
/// walking the `Commands:` sections: succeeds, and every flag and argument
/// it lists has a description.
#[test]
fn every_commands_help_describes_every_flag() {
    let mut pending = vec![Vec::<String>::new()];
    let mut seen = 0;
    let mut undescribed = Vec::new();
    while let Some(path) = pending.pop() {
        let text = help(&path);
        seen += 1;
        for line in undescribed_args(&text) {
            undescribed.push(format!("walletd {} --help: {line}", path.join(" ")));
        }
        for sub in subcommands(&text) {
            let mut next = path.clone();
            next.push(sub);
            pending.push(next);
        }
    }
    // walletd itself, 11 commands, and the subcommands of api-key (3),
    // app (3), kyc (2) and config (1).
    assert!(seen >= 21, "only {seen} help pages");
    assert!(
        undescribed.is_empty(),
        "undescribed:\n{}",
        undescribed.join("\n")
    );
}

fn help(path: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_walletd"))
        .args(path)
        .arg("--help")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run walletd");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{path:?} --help: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Usage:"), "{path:?}:\n{text}");
    text
}

/// The names listed under `Commands:` (but `help`).
fn subcommands(help: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            inside = line == "Commands:";
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if inside && indent == 2 {
            if let Some(name) = line.split_whitespace().next() {
                if name != "help" {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
}

/// Flag and argument lines (outside `Usage:` and `Commands:`) with no text
/// beside or below them other than clap's own `[env: …]`, `[default: …]`
/// notes. Handles both layouts clap uses: the description on the same line,
/// or (when some help is long) on the lines below, indented further.
fn undescribed_args(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut missing = Vec::new();
    let mut section = "";
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') && !line.is_empty() {
            section = line;
            continue;
        }
        if section.starts_with("Usage") || section == "Commands:" {
            continue;
        }
        let trimmed = line.trim_start();
        let is_arg = indent(line) <= 6
            && (trimmed.starts_with('-') || trimmed.starts_with('<') || trimmed.starts_with('['));
        if !is_arg {
            continue;
        }
        // Same line: the text after the flag and its value, two spaces on.
        let mut text = trimmed
            .split_once("  ")
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default();
        // Below: the lines indented further, up to the next flag or section.
        for below in &lines[i + 1..] {
            if !below.trim().is_empty() && indent(below) <= indent(line) {
                break;
            }
            text.push(' ');
            text.push_str(below.trim());
        }
        if !described(&text) {
            missing.push(trimmed.to_string());
        }
    }
    missing
}

/// Whether `text` says something beyond clap's bracketed notes.
fn described(text: &str) -> bool {
    let mut rest = text.to_string();
    for note in ["[env: ", "[default: ", "[possible values: ", "[aliases: "] {
        while let Some(at) = rest.find(note) {
            let end = rest[at..].find(']').map_or(rest.len(), |e| at + e + 1);
            rest.replace_range(at..end, "");
        }
    }
    rest.chars().any(char::is_alphanumeric)
}

#[test]
fn the_help_parser_finds_an_undescribed_flag() {
    let same_line = "Usage: walletd x\n\nOptions:\n      --name <NAME>  Who it is for\n      \
                     --bare <BARE>  [env: WALLETD_BARE=]\n  -h, --help  Print help\n";
    assert_eq!(
        undescribed_args(same_line),
        vec!["--bare <BARE>  [env: WALLETD_BARE=]"]
    );
    let below = "Usage: walletd x\n\nOptions:\n      --name <NAME>\n          Who it is for\n\n      \
                 --bare <BARE>\n          [env: WALLETD_BARE=]\n\n  -h, --help\n          Print help\n";
    assert_eq!(undescribed_args(below), vec!["--bare <BARE>"]);
    assert_eq!(
        subcommands("Usage: walletd\n\nCommands:\n  serve  Run\n  help   Print\n\nOptions:\n"),
        vec!["serve"]
    );
}
