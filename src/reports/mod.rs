//! Compliance reports (issue 13), computed from the event log as of any past
//! position or time, or live from the audit-log projection.
//!
//! A report over events is a fold (`folds`) that runs unchanged over either
//! source (`source`): so the report as of now equals the live one unless the
//! projection has drifted from the log. Each report names its input
//! (`input`): the root of the tree over exactly the events it read, and the
//! latest signed checkpoint, so an auditor can check the input with a
//! consistency proof and reproduce the report from an export.

mod folds;
mod input;
mod record;
mod refusals;
mod source;
mod table;

use base64::Engine as _;
use serde_json::Value;
use sqlx::Row;
use walletd_projections::{with_db, Db, ProjectionError};

pub use input::Input;
pub use source::{Cut, Reached};
pub use table::Table;

use crate::domain::Timestamp;
use crate::transparency::hashes::TreeError;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportName {
    /// Wallets created per day, per API dialect and custody kind.
    WalletsCreated,
    /// Signatures per wallet and per user: messages, typed data,
    /// transactions, by chain id.
    SigningActivity,
    /// KYC status changes of Sila users.
    KycChanges,
    /// Queued → whitelisted latency: p50, p95, max.
    WhitelistLatency,
    /// Refused requests by reason (from the security log, by time).
    Refusals,
    /// Default-wallet changes.
    DefaultWalletChanges,
    /// Master-key rotations and frozen MPC keys.
    KeyMaterial,
    /// Each wallet's balance per asset.
    LedgerBalances,
    /// Per asset: issued, redeemed, in transit, held, supply, and whether
    /// supply = held + in transit = issued − redeemed.
    LedgerSupply,
    /// Movements per day, asset and kind, with their total.
    LedgerMovementsPerDay,
}

impl ReportName {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportName::WalletsCreated => "wallets-created",
            ReportName::SigningActivity => "signing-activity",
            ReportName::KycChanges => "kyc-changes",
            ReportName::WhitelistLatency => "whitelist-latency",
            ReportName::Refusals => "refusals",
            ReportName::DefaultWalletChanges => "default-wallet-changes",
            ReportName::KeyMaterial => "key-material",
            ReportName::LedgerBalances => "ledger-balances",
            ReportName::LedgerSupply => "ledger-supply",
            ReportName::LedgerMovementsPerDay => "ledger-movements-per-day",
        }
    }

    pub fn all() -> &'static [ReportName] {
        &[
            ReportName::WalletsCreated,
            ReportName::SigningActivity,
            ReportName::KycChanges,
            ReportName::WhitelistLatency,
            ReportName::Refusals,
            ReportName::DefaultWalletChanges,
            ReportName::KeyMaterial,
            ReportName::LedgerBalances,
            ReportName::LedgerSupply,
            ReportName::LedgerMovementsPerDay,
        ]
    }

    pub fn parse(s: &str) -> Option<ReportName> {
        Self::all().iter().copied().find(|n| n.as_str() == s)
    }
}

/// When a report is as of.
#[derive(Clone, Debug, PartialEq)]
pub enum AsOf {
    /// From the projections, as they stand.
    Live,
    /// From the log, up to a cut.
    Log(Cut),
}

impl AsOf {
    /// A log position (a number: the first N events) or an RFC 3339 time.
    pub fn parse(s: &str) -> Result<AsOf, String> {
        if let Ok(n) = s.parse::<u64>() {
            if n > i64::MAX as u64 {
                return Err(format!("as-of position {s} is out of range"));
            }
            return Ok(AsOf::Log(Cut::Events(n)));
        }
        Timestamp::parse(s)
            .map(|t| AsOf::Log(Cut::Time(t)))
            .ok_or(format!(
            "as-of must be a log position (a non-negative integer) or an RFC 3339 time, not {s:?}"
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The caller asked for more than the log holds (400).
    #[error("the log holds {length} events so far; there is no position {asked} yet")]
    BeyondLog { asked: u64, length: u64 },
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// An export that is not a whole log from position 0.
    #[error("the export: {0}")]
    Export(String),
    /// Refused requests are not events: an export does not hold them.
    #[error("the {0} report is not computed from events, so not from an export")]
    NotFromEvents(&'static str),
}

pub struct Report {
    pub name: ReportName,
    /// `log`, `projections` or `export`.
    pub source: &'static str,
    pub reached: Reached,
    pub input: Input,
    pub table: Table,
}

/// A report as JSON: what it was computed from, and its rows.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportBody {
    /// The report's name.
    pub report: &'static str,
    /// `log` (recomputed from the event log), `projections` (live) or
    /// `export` (offline, from an export file).
    pub source: &'static str,
    pub as_of: Reached,
    pub input: Input,
    pub columns: Vec<&'static str>,
    /// One object per row, keyed by column.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
}

impl Report {
    pub fn body(&self) -> ReportBody {
        ReportBody {
            report: self.name.as_str(),
            source: self.source,
            as_of: self.reached.clone(),
            input: self.input.clone(),
            columns: self.table.columns.clone(),
            rows: self.table.objects(),
        }
    }
}

/// The audit-log projection's last event: where the live report stands.
async fn projection_head(db: &Db) -> Result<Reached, ReportError> {
    Ok(with_db!(db, pool => {
        match sqlx::query("SELECT seq, position, occurred_at FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(pool)
            .await?
        {
            Some(r) => Reached {
                events: r.try_get::<i64, _>("seq")? as u64,
                position: Some(r.try_get("position")?),
                at: Some(r.try_get("occurred_at")?),
            },
            None => Reached::default(),
        }
    }))
}

pub async fn compute(db: &Db, name: ReportName, as_of: &AsOf) -> Result<Report, ReportError> {
    let (source, reached, table) = match folds::for_report(name) {
        Some(mut fold) => {
            let reached = match as_of {
                AsOf::Live => source::from_projection(db, |r| fold.apply(r)).await?,
                AsOf::Log(cut) => source::from_log(db, cut, |r| fold.apply(r)).await?,
            };
            (source_name(as_of), reached, fold.finish())
        }
        None => {
            // Refusals are cut by time: a position stands for its event's.
            let (reached, until) = match as_of {
                AsOf::Live => (projection_head(db).await?, refusals::NO_CUT.to_string()),
                AsOf::Log(cut) => {
                    let reached = source::from_log(db, cut, |_| ()).await?;
                    let until = match cut {
                        Cut::Time(t) => t.to_text(),
                        Cut::Events(_) => reached.at.clone().unwrap_or_default(),
                    };
                    (reached, until)
                }
            };
            (
                source_name(as_of),
                reached,
                refusals::table(db, &until).await?,
            )
        }
    };
    let input = input::name(db, reached.events).await?;
    Ok(Report {
        name,
        source,
        reached,
        input,
        table,
    })
}

/// A report recomputed offline from an export, up to `cut` (all of it
/// without one): no database. Its input names the root of the tree over the
/// events read, recomputed from them, to compare with a signed checkpoint.
pub fn compute_from_export(
    name: ReportName,
    export: impl std::io::BufRead,
    cut: Option<&Cut>,
) -> Result<Report, ReportError> {
    let mut fold = folds::for_report(name).ok_or(ReportError::NotFromEvents(name.as_str()))?;
    let (reached, root) = source::from_export(export, cut, |r| fold.apply(r))?;
    Ok(Report {
        name,
        source: "export",
        input: Input {
            tree_size: reached.events,
            root: (reached.events > 0)
                .then(|| base64::engine::general_purpose::STANDARD.encode(root.0)),
            checkpoint: None,
            checkpoint_size: None,
        },
        reached,
        table: fold.finish(),
    })
}

fn source_name(as_of: &AsOf) -> &'static str {
    match as_of {
        AsOf::Live => "projections",
        AsOf::Log(_) => "log",
    }
}
