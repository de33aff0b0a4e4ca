//! Reading `search.orders`: one order, or a filtered page.

use db::{AssertSqlSafe, Db, Row as _};

use crate::projection::Item;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    pub(crate) order_id: String,
    pub(crate) customer_id: String,
    pub(crate) customer_name: String,
    pub(crate) items: Vec<Item>,
    pub(crate) total: f64,
    pub(crate) status: String,
    created_at: i64,
}

/// Every filter of `searchpb.SearchOrdersRequest.Filters`; empty or zero means "any".
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    pub(crate) customer_id: String,
    /// µs since the epoch.
    pub(crate) after: Option<i64>,
    pub(crate) before: Option<i64>,
    pub(crate) store_ids: Vec<String>,
    pub(crate) product_ids: Vec<String>,
    pub(crate) min_total: f64,
    pub(crate) max_total: f64,
    pub(crate) status: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("the next page marker is not valid")]
    BadCursor,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const SELECT: &str = "SELECT order_id, customer_id, customer_name, items, total, status, created_at FROM search.orders";

fn from_row(row: &db::AnyRow) -> Result<Order, sqlx::Error> {
    let items: String = row.try_get(3)?;
    Ok(Order {
        order_id: row.try_get(0)?,
        customer_id: row.try_get(1)?,
        customer_name: row.try_get(2)?,
        items: serde_json::from_str(&items).map_err(|e| sqlx::Error::Decode(e.into()))?,
        total: row.try_get(4)?,
        status: row.try_get(5)?,
        created_at: row.try_get(6)?,
    })
}

pub(crate) async fn find(db: &Db, order_id: &str) -> Result<Option<Order>, Error> {
    let row = sqlx::query(AssertSqlSafe(format!("{SELECT} WHERE order_id = $1")))
        .bind(order_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

enum Value {
    Text(String),
    Int(i64),
    Real(f64),
}

/// Newest first; `next` continues after the last order of the previous page.
pub(crate) async fn search(
    db: &Db,
    filters: &Filters,
    next: &str,
    limit: i64,
) -> Result<(Vec<Order>, String), Error> {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    let bind = |value: Value, values: &mut Vec<Value>| {
        values.push(value);
        format!("${}", values.len())
    };
    if !filters.customer_id.is_empty() {
        conditions.push(format!(
            "customer_id = {}",
            bind(Value::Text(filters.customer_id.clone()), &mut values)
        ));
    }
    if let Some(after) = filters.after {
        conditions.push(format!(
            "created_at > {}",
            bind(Value::Int(after), &mut values)
        ));
    }
    if let Some(before) = filters.before {
        conditions.push(format!(
            "created_at < {}",
            bind(Value::Int(before), &mut values)
        ));
    }
    for (ids, table, column) in [
        (&filters.store_ids, "order_stores", "store_id"),
        (&filters.product_ids, "order_products", "product_id"),
    ] {
        if !ids.is_empty() {
            let placeholders: Vec<String> = ids
                .iter()
                .map(|id| bind(Value::Text(id.clone()), &mut values))
                .collect();
            conditions.push(format!(
                "order_id IN (SELECT order_id FROM search.{table} WHERE {column} IN ({}))",
                placeholders.join(", ")
            ));
        }
    }
    if filters.min_total > 0.0 {
        conditions.push(format!(
            "total >= {}",
            bind(Value::Real(filters.min_total), &mut values)
        ));
    }
    if filters.max_total > 0.0 {
        conditions.push(format!(
            "total <= {}",
            bind(Value::Real(filters.max_total), &mut values)
        ));
    }
    if !filters.status.is_empty() {
        conditions.push(format!(
            "status = {}",
            bind(Value::Text(filters.status.clone()), &mut values)
        ));
    }
    if !next.is_empty() {
        let (at, id) = next.split_once(':').ok_or(Error::BadCursor)?;
        let at: i64 = at.parse().map_err(|_| Error::BadCursor)?;
        let (a, o) = (
            bind(Value::Int(at), &mut values),
            bind(Value::Text(id.to_owned()), &mut values),
        );
        conditions.push(format!(
            "(created_at < {a} OR (created_at = {a} AND order_id < {o}))"
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let limit = limit.clamp(1, 100);
    let sql = format!(
        "{SELECT}{filter} ORDER BY created_at DESC, order_id DESC LIMIT {}",
        limit + 1
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for value in values {
        query = match value {
            Value::Text(text) => query.bind(text),
            Value::Int(int) => query.bind(int),
            Value::Real(real) => query.bind(real),
        };
    }
    let rows = query.fetch_all(db.pool()).await?;
    let mut orders: Vec<Order> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    let more = orders.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    orders.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = match (more, orders.last()) {
        (true, Some(last)) => format!("{}:{}", last.created_at, last.order_id),
        _ => String::new(),
    };
    Ok((orders, next))
}
