//! Money counted in whole cents (ADR 19).
//!
//! The book's wire carries amounts as doubles, and so do ours. A sum of doubles can drift by a
//! fraction of a cent per term, and an unchecked product can overflow into infinity; a total is
//! therefore computed here in integer cents, with every step checked, and turned back into a
//! double only at the edge. Within [`MAX_AMOUNT`] every amount of whole cents is a double
//! exactly, so nothing is lost either way.

/// The largest amount counted: 10^13 (10^15 cents, below 2^53, where doubles stop counting
/// whole cents exactly).
pub const MAX_AMOUNT: f64 = 1e13;

/// A sum of money in cents (minor units), never beyond [`MAX_AMOUNT`] either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Cents(i64);

impl Cents {
    /// `amount` rounded to the nearest cent; `None` when it is not finite or beyond
    /// [`MAX_AMOUNT`].
    pub fn from_amount(amount: f64) -> Option<Cents> {
        if !amount.is_finite() || amount.abs() > MAX_AMOUNT {
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            reason = "finite and at most 10^15 after scaling"
        )]
        Some(Cents((amount * 100.0).round() as i64))
    }

    /// The amount as the wire writes it.
    #[allow(
        clippy::cast_precision_loss,
        reason = "at most 10^15 cents: exact in a double"
    )]
    pub fn amount(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// How many cents.
    pub fn count(self) -> i64 {
        self.0
    }

    /// `count` cents, as [`Cents::count`] gave them (stored, say); `None` beyond
    /// [`MAX_AMOUNT`].
    pub fn from_count(count: i64) -> Option<Cents> {
        Cents::bounded(count)
    }

    /// `quantity` times this; `None` beyond [`MAX_AMOUNT`].
    pub fn times(self, quantity: i64) -> Option<Cents> {
        Cents::bounded(self.0.checked_mul(quantity)?)
    }

    /// This plus `other`; `None` beyond [`MAX_AMOUNT`].
    pub fn plus(self, other: Cents) -> Option<Cents> {
        Cents::bounded(self.0.checked_add(other.0)?)
    }

    fn bounded(cents: i64) -> Option<Cents> {
        (cents.unsigned_abs() <= 1_000_000_000_000_000).then_some(Cents(cents))
    }
}

/// A total that cannot be counted: a price that is not a finite amount, or a sum beyond
/// [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uncountable;

impl std::fmt::Display for Uncountable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the total cannot be counted (a price is not finite, or it is beyond {MAX_AMOUNT})"
        )
    }
}

impl std::error::Error for Uncountable {}

/// The total of `lines` (a price and a quantity each), in cents.
///
/// # Errors
/// [`Uncountable`] when a price is not a finite amount or the total goes beyond
/// [`MAX_AMOUNT`].
pub fn total(lines: impl IntoIterator<Item = (f64, i64)>) -> Result<Cents, Uncountable> {
    lines
        .into_iter()
        .try_fold(Cents::default(), |sum, (price, quantity)| {
            sum.plus(Cents::from_amount(price)?.times(quantity)?)
        })
        .ok_or(Uncountable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_total_is_exact_in_cents() {
        // As doubles, 0.1 + 0.2 is 0.30000000000000004 and ten times 0.1 is 0.9999999999999999.
        assert_eq!(total([(0.1, 1), (0.2, 1)]).map(Cents::amount), Ok(0.3));
        assert_eq!(total(vec![(0.1, 1); 10]).map(Cents::amount), Ok(1.0));
        assert_eq!(total([(9.99, 3), (0.01, 1)]).map(Cents::count), Ok(2998));
        assert_eq!(total([]), Ok(Cents::default()));
    }

    #[test]
    fn a_count_comes_back_as_it_was_stored() {
        let total = Cents::from_amount(1234.56).unwrap();
        assert_eq!(Cents::from_count(total.count()), Some(total));
        assert_eq!(Cents::from_count(i64::MAX), None);
    }

    #[test]
    fn what_cannot_be_counted_is_refused() {
        assert_eq!(total([(f64::INFINITY, 1)]), Err(Uncountable));
        assert_eq!(total([(f64::NAN, 1)]), Err(Uncountable));
        assert_eq!(total([(1.7e308, 2)]), Err(Uncountable));
        assert_eq!(
            total([(1e6, i64::from(i32::MAX)), (1e6, i64::from(i32::MAX))]),
            Err(Uncountable)
        );
        assert_eq!(total([(MAX_AMOUNT, 1), (0.01, 1)]), Err(Uncountable));
        assert!(total([(MAX_AMOUNT, 1)]).is_ok());
        assert_eq!(Cents::from_amount(-0.004), Some(Cents(0)));
    }
}
