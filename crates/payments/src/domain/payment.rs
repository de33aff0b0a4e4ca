//! A payment authorization: an amount a customer agreed to pay, confirmed later for an order.

/// The most one payment may authorize.
pub(crate) const MAX_AMOUNT: f64 = 1e12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    #[error("the customer id cannot be blank")]
    BlankCustomer,
    #[error("the payment amount must be positive")]
    NonPositiveAmount,
    #[error("the payment amount cannot be more than 1000000000000")]
    AmountBeyondMaximum,
    #[error("payment cannot be confirmed")]
    NotFound,
    #[error("payment with that ID does not exist")]
    PaymentNotFound,
    #[error("payment cannot be confirmed: the amount exceeds the authorized amount")]
    AmountTooHigh,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Payment {
    pub(crate) id: String,
    pub(crate) customer_id: String,
    pub(crate) amount: f64,
}

impl Payment {
    pub(crate) fn authorize(
        id: String,
        customer_id: String,
        amount: f64,
    ) -> Result<Payment, Error> {
        if customer_id.trim().is_empty() {
            return Err(Error::BlankCustomer);
        }
        if amount.is_nan() || amount <= 0.0 {
            return Err(Error::NonPositiveAmount);
        }
        // Infinity included: an amount must stay a number every module can add up.
        if amount > MAX_AMOUNT {
            return Err(Error::AmountBeyondMaximum);
        }
        Ok(Payment {
            id,
            customer_id,
            amount,
        })
    }

    /// May `amount` be charged against this authorization? Compared in whole cents.
    pub(crate) fn confirm(&self, amount: f64) -> Result<(), Error> {
        match (
            money::Cents::from_amount(amount),
            money::Cents::from_amount(self.amount),
        ) {
            (Some(charged), Some(authorized)) if charged <= authorized => Ok(()),
            _ => Err(Error::AmountTooHigh),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authorization_needs_a_customer_and_a_positive_amount() {
        assert_eq!(
            Payment::authorize("p".into(), " ".into(), 1.0),
            Err(Error::BlankCustomer)
        );
        assert_eq!(
            Payment::authorize("p".into(), "c".into(), 0.0),
            Err(Error::NonPositiveAmount)
        );
        assert_eq!(
            Payment::authorize("p".into(), "c".into(), -5.0),
            Err(Error::NonPositiveAmount)
        );
        assert!(Payment::authorize("p".into(), "c".into(), 200.0).is_ok());
        assert_eq!(
            Payment::authorize("p".into(), "c".into(), f64::INFINITY),
            Err(Error::AmountBeyondMaximum)
        );
    }

    #[test]
    fn confirming_more_than_authorized_is_refused() {
        let payment = Payment::authorize("p".into(), "c".into(), 49.95).unwrap();
        assert_eq!(payment.confirm(49.95), Ok(()));
        assert_eq!(payment.confirm(10.0), Ok(()));
        assert_eq!(payment.confirm(50.0), Err(Error::AmountTooHigh));
    }
}
