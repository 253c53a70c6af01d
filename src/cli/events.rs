//! `walletd events export`: the sealed log in tree order, one record per
//! event (JSON lines or CSV), page by page in constant memory.

use std::io::Write as _;

use clap::{Args, Subcommand, ValueEnum};

use super::progress::Progress;
use super::{CliResult, ONE_SHOT_POOL};
use crate::config::Settings;
use crate::domain::Timestamp;
use crate::transparency::export::{page, Entry};
use crate::transparency::sealer::latest_checkpoint;

#[derive(Subcommand, Debug)]
pub enum EventsCli {
    /// Write the sealed log (events with their leaf index and leaf hash, in
    /// the order of the transparency log) to a file or stdout.
    Export(ExportArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// First leaf index (log position) to export.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Export below this leaf index (default: the latest checkpoint's size).
    #[arg(long)]
    pub to: Option<u64>,
    /// Only events recorded at or after this time (RFC 3339, the metadata's `at`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events recorded before this time (RFC 3339, the metadata's `at`).
    #[arg(long)]
    pub until: Option<String>,
    /// Only events of this aggregate id.
    #[arg(long)]
    pub aggregate: Option<String>,
    /// Only events of this type (e.g. WalletCreated).
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// Output format. A filtered export cannot be verified offline as a whole
    /// log; a complete one (no filters, from 0) can.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Write here instead of stdout.
    #[arg(long)]
    pub output: Option<std::path::PathBuf>,
}

pub async fn run(settings: Settings, command: EventsCli) -> CliResult {
    match command {
        EventsCli::Export(args) => export(settings, args).await,
    }
}

enum Sink {
    Jsonl(Box<dyn std::io::Write>),
    Csv(Box<csv::Writer<Box<dyn std::io::Write>>>),
}

impl Sink {
    fn write(&mut self, e: &Entry) -> Result<(), Box<dyn std::error::Error>> {
        let j = e.to_json();
        match self {
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, &j)?;
                out.write_all(b"\n")?;
            }
            Sink::Csv(w) => w.write_record([
                e.index.to_string(),
                e.event.at.position.to_string(),
                e.event.aggregate_type.clone(),
                e.event.aggregate_id.clone(),
                e.event.sequence.to_string(),
                e.event.event_type.clone(),
                e.event.event_version.clone(),
                j["payload"].to_string(),
                j["metadata"].to_string(),
                j["leaf_hash"].as_str().unwrap_or_default().to_string(),
            ])?,
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Jsonl(out) => out.flush(),
            Sink::Csv(w) => w.flush(),
        }
    }
}

fn time(name: &str, v: &Option<String>) -> Result<Option<Timestamp>, String> {
    v.as_ref()
        .map(|s| Timestamp::parse(s).ok_or(format!("--{name}: {s:?} is not an RFC 3339 time")))
        .transpose()
}

async fn export(settings: Settings, args: ExportArgs) -> CliResult {
    let (since, until) = (time("since", &args.since)?, time("until", &args.until)?);
    let db = crate::store::connect(&settings.database_url, ONE_SHOT_POOL).await?;
    crate::store::migrate::run(&db).await?;
    let sealed = latest_checkpoint(&db).await?.map(|c| c.0).unwrap_or(0);
    let to = args.to.unwrap_or(sealed).min(sealed);
    let out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut sink = match args.format {
        Format::Jsonl => Sink::Jsonl(out),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "index",
                "position",
                "aggregate_type",
                "aggregate_id",
                "sequence",
                "event_type",
                "event_version",
                "payload",
                "metadata",
                "leaf_hash",
            ])?;
            Sink::Csv(Box::new(w))
        }
    };
    let keep = |e: &Entry| {
        let ev = &e.event;
        let at = ev
            .metadata
            .get("at")
            .and_then(|v| v.as_str())
            .and_then(Timestamp::parse);
        args.aggregate
            .as_ref()
            .is_none_or(|a| &ev.aggregate_id == a)
            && args.event_type.as_ref().is_none_or(|t| &ev.event_type == t)
            && since
                .as_ref()
                .is_none_or(|s| at.as_ref().is_some_and(|at| at >= s))
            && until
                .as_ref()
                .is_none_or(|u| at.as_ref().is_some_and(|at| at < u))
    };
    let progress = Progress::new(
        "events export",
        "events",
        Some(to.saturating_sub(args.from)),
    );
    let mut next = args.from;
    let mut written = 0u64;
    while next < to {
        let entries = page(&db, next, to, 1000).await?;
        let Some(last) = entries.last() else { break };
        let read = last.index + 1 - next;
        next = last.index + 1;
        for e in entries.iter().filter(|e| keep(e)) {
            sink.write(e)?;
            written += 1;
        }
        progress.inc(read);
    }
    sink.flush()?;
    progress.finish();
    eprintln!(
        "exported {written} events (leaves {}..{to} of a sealed log of {sealed})",
        args.from
    );
    db.close().await;
    Ok(())
}
