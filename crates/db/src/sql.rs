//! SQL text built from counts: placeholders, and the few shapes a statement over a batch is
//! written in, so that sqlx prepares each shape once per connection.

/// `$first, $first+1, …`: the placeholders of `count` values bound in a row (an `IN` list, a
/// `VALUES` tuple), numbered from `first`.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `items` in chunks whose sizes are powers of two, none over `most`, largest first: a
/// statement written over each chunk (an `IN` list, rows of `VALUES`) then comes in a few
/// shapes rather than one per count, so each shape is prepared once per connection instead of
/// each new count costing a prepare and evicting a module's statement from the cache.
pub fn in_shapes<T>(items: &[T], most: usize) -> impl Iterator<Item = &[T]> {
    let most = most.max(1);
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = most.min(1 << rest.len().ilog2());
        let (chunk, after) = rest.split_at(size);
        rest = after;
        Some(chunk)
    })
}

/// `values` padded to the next power of two by repeating the last, for an `IN` list (where a
/// repeat changes nothing): one statement, in one of a few shapes ([`in_shapes`]).
pub fn padded<T>(values: &[T]) -> Vec<&T> {
    let Some(last) = values.last() else {
        return Vec::new();
    };
    let width = values.len().next_power_of_two();
    values
        .iter()
        .chain(std::iter::repeat_n(last, width - values.len()))
        .collect()
}

/// `($first, …), (…)`: `rows` tuples of `width` placeholders each, numbered from `first`
/// (the rows of a multi-row `VALUES`).
pub fn rows(first: usize, width: usize, rows: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", placeholders(first + row * width, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_come_in_powers_of_two_largest_first() {
        let items: Vec<u32> = (0..23).collect();
        let sizes: Vec<usize> = super::in_shapes(&items, 8).map(<[u32]>::len).collect();
        assert_eq!(sizes, [8, 8, 4, 2, 1]);
        let again: Vec<u32> = super::in_shapes(&items, 8).flatten().copied().collect();
        assert_eq!(again, items, "every item once, in order");
        assert_eq!(super::in_shapes(&items[..0], 8).count(), 0);
        assert_eq!(
            super::in_shapes(&items[..3], 0)
                .map(<[u32]>::len)
                .collect::<Vec<_>>(),
            [1, 1, 1]
        );
    }

    #[test]
    fn rows_number_their_placeholders_on() {
        assert_eq!(super::rows(2, 2, 2), "($2, $3), ($4, $5)");
    }

    #[test]
    fn an_in_list_is_padded_with_its_last_value() {
        assert_eq!(super::padded(&[1, 2, 3]), [&1, &2, &3, &3]);
        assert_eq!(super::padded(&[1, 2]), [&1, &2]);
        assert!(super::padded::<u8>(&[]).is_empty());
    }
}
