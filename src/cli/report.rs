//! `walletd report NAME`: a compliance report, live (from the projections),
//! as of a past log position or time (recomputed from the log), or
//! recomputed offline from an export.

use std::io::Write as _;

use clap::{Args, ValueEnum};

use super::{CliResult, ONE_SHOT_POOL};
use crate::config::Settings;
use crate::reports::{compute, compute_from_export, AsOf, ReportName};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub name: ReportName,
    /// Recompute from the log as of a position (the first N events: the tree
    /// of size N) or an RFC 3339 time. Default: live, from the projections.
    #[arg(long, value_parser = AsOf::parse)]
    pub as_of: Option<AsOf>,
    /// JSON carries what the report was computed from; CSV is the table alone
    /// (its input is printed on stderr).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Write here instead of stdout.
    #[arg(long)]
    pub output: Option<std::path::PathBuf>,
    /// Offline: recompute from this export (`walletd events export`, JSON
    /// lines, complete from position 0) instead of the database; `--as-of`
    /// then cuts the export (default: all of it).
    #[arg(long)]
    pub events: Option<std::path::PathBuf>,
}

pub async fn run(settings: Settings, args: ReportArgs) -> CliResult {
    let report = match &args.events {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| format!("--events {}: {e}", path.display()))?;
            let cut = match &args.as_of {
                Some(AsOf::Log(cut)) => Some(cut),
                _ => None,
            };
            compute_from_export(args.name, std::io::BufReader::new(file), cut)?
        }
        None => {
            let db = crate::store::connect(&settings.database_url, ONE_SHOT_POOL).await?;
            crate::store::migrate::run(&db).await?;
            let as_of = args.as_of.clone().unwrap_or(AsOf::Live);
            let report = compute(&db, args.name, &as_of).await;
            db.close().await;
            report?
        }
    };
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report.body())?;
            out.write_all(b"\n")?;
        }
        Format::Csv => {
            report.table.write_csv(&mut out)?;
            let i = &report.input;
            eprintln!(
                "{} from the {}: {} events (tree root {}), latest checkpoint size {}",
                report.name.as_str(),
                report.source,
                i.tree_size,
                i.root.as_deref().unwrap_or("not sealed yet"),
                i.checkpoint_size
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "none".into()),
            );
        }
    }
    out.flush()?;
    Ok(())
}
