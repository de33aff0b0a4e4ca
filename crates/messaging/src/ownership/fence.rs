//! What keeps a part with its owner: the fence its transactions check, and which part a
//! message belongs to.

use std::sync::Arc;

use db::AssertSqlSafe;

/// The check a transaction handling one part's messages makes before it commits anything: the
/// part is still this replica's, at the epoch it was taken at. On PostgreSQL the row is locked
/// for share until the commit, so a replica taking the part over waits for that commit.
#[derive(Debug, Clone)]
pub struct Fence {
    pub(super) sql: Arc<str>,
    pub(super) consumer: String,
    pub(super) part: u32,
    pub(super) owner: String,
    pub(super) epoch: i64,
}

impl Fence {
    /// Whether the part is still held, inside `tx`.
    ///
    /// # Errors
    /// The database's.
    pub async fn holds(&self, tx: &mut db::Conn) -> Result<bool, sqlx::Error> {
        let row = sqlx::query(AssertSqlSafe(self.sql.clone()))
            .bind(&self.consumer)
            .bind(i64::from(self.part))
            .bind(&self.owner)
            .bind(self.epoch)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(row.is_some())
    }
}

/// The part of `parts` that messages about `key` belong to: FNV-1a, the same in every build
/// and on every replica (std's hasher may change between Rust releases). Messages about no
/// aggregate all go to part 0, keeping the order they came in.
#[must_use]
pub fn part_of_key(key: Option<&str>, parts: u32) -> u32 {
    let Some(key) = key else { return 0 };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    u32::try_from(hash % u64::from(parts.max(1))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::part_of_key;

    /// Replicas of different builds must agree on every message's part: FNV-1a 64 as its
    /// published vectors have it ("a" → 0xaf63dc4c8601ec8c), reduced modulo the parts.
    #[test]
    fn a_key_has_the_same_part_in_every_build() {
        assert_eq!(part_of_key(None, 4), 0, "no aggregate: part 0");
        assert_eq!(part_of_key(Some("order-1"), 1), 0);
        let parts =
            |n| ["a", "order-1", "order-2", "basket-9", ""].map(|key| part_of_key(Some(key), n));
        assert_eq!(parts(4), [0, 1, 0, 1, 1]);
        assert_eq!(parts(7), [5, 5, 3, 3, 2]);
    }
}
