//! Where streams stand: each aggregate's newest stored sequence number, for
//! many aggregates in one query. A cached state at that sequence is proven
//! current without loading it.

use std::collections::HashMap;

use walletd_projections::{with_db, Db};

/// At most this many ids per query: well below both backends' limits on
/// bound parameters.
pub(crate) const IDS_PER_QUERY: usize = 500;

/// The query on any connection or transaction of either backend: a
/// `Result` of a `HashMap` of each id's newest sequence (an id with no
/// events is absent). `$ids` is a slice of at most [`IDS_PER_QUERY`]
/// `String`s.
macro_rules! newest_sequences {
    ($conn:expr, $aggregate_type:expr, $ids:expr) => {
        async {
            use sqlx::Row as _;
            let mut q = sqlx::QueryBuilder::new(
                "SELECT aggregate_id, MAX(sequence) AS n FROM events WHERE aggregate_type = ",
            );
            q.push_bind($aggregate_type).push(" AND aggregate_id IN (");
            let mut list = q.separated(", ");
            for id in $ids.iter() {
                list.push_bind(id.as_str());
            }
            q.push(") GROUP BY aggregate_id");
            let mut out: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
            for r in q.build().fetch_all($conn).await? {
                out.insert(r.try_get("aggregate_id")?, r.try_get("n")?);
            }
            Ok::<_, sqlx::Error>(out)
        }
        .await
    };
}
pub(crate) use newest_sequences;

/// Each of `ids`' newest sequence; an aggregate with no events is absent.
pub(crate) async fn newest(
    db: &Db,
    aggregate_type: &str,
    ids: &[String],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let found = with_db!(db, pool => newest_sequences!(pool, aggregate_type, chunk)?);
        out.extend(found);
    }
    Ok(out)
}
