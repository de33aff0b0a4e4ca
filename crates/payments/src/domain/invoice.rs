//! An invoice for a ready order: pending until paid, or canceled with its order.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    #[error("invoice with that ID does not exist")]
    NotFound,
    #[error("invoice cannot be paid for")]
    CannotPay,
    #[error("invoice cannot be canceled")]
    CannotCancel,
    #[error("invoice cannot be adjusted")]
    CannotAdjust,
    #[error("the invoice amount must be positive")]
    NonPositiveAmount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Pending,
    Paid,
    Canceled,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Canceled => "canceled",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Status> {
        [Status::Pending, Status::Paid, Status::Canceled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What happened to an invoice that others must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Paid,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invoice {
    pub(crate) id: String,
    pub(crate) order_id: String,
    /// Who pays it (empty when the order's customer is not known).
    pub(crate) customer_id: String,
    pub(crate) amount: f64,
    pub(crate) status: Status,
}

impl Invoice {
    pub(crate) fn create(
        id: String,
        order_id: String,
        customer_id: String,
        amount: f64,
    ) -> Result<Invoice, Error> {
        if amount.is_nan() || amount <= 0.0 {
            return Err(Error::NonPositiveAmount);
        }
        Ok(Invoice {
            id,
            order_id,
            customer_id,
            amount,
            status: Status::Pending,
        })
    }

    pub(crate) fn pay(&mut self) -> Result<Event, Error> {
        if self.status != Status::Pending {
            return Err(Error::CannotPay);
        }
        self.status = Status::Paid;
        Ok(Event::Paid)
    }

    pub(crate) fn cancel(&mut self) -> Result<(), Error> {
        if self.status != Status::Pending {
            return Err(Error::CannotCancel);
        }
        self.status = Status::Canceled;
        Ok(())
    }

    pub(crate) fn adjust(&mut self, amount: f64) -> Result<(), Error> {
        if self.status != Status::Pending {
            return Err(Error::CannotAdjust);
        }
        if amount.is_nan() || amount <= 0.0 {
            return Err(Error::NonPositiveAmount);
        }
        self.amount = amount;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice() -> Invoice {
        Invoice::create("o1".into(), "o1".into(), "c1".into(), 49.95).unwrap()
    }

    #[test]
    fn a_pending_invoice_is_paid_once() {
        let mut invoice = invoice();
        assert_eq!(invoice.pay(), Ok(Event::Paid));
        assert_eq!(invoice.pay(), Err(Error::CannotPay));
        assert_eq!(invoice.cancel(), Err(Error::CannotCancel));
    }

    #[test]
    fn a_canceled_invoice_cannot_be_paid() {
        let mut invoice = invoice();
        assert_eq!(invoice.cancel(), Ok(()));
        assert_eq!(invoice.pay(), Err(Error::CannotPay));
        assert_eq!(invoice.adjust(10.0), Err(Error::CannotAdjust));
    }

    #[test]
    fn every_status_round_trips() {
        for status in [Status::Pending, Status::Paid, Status::Canceled] {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn amounts_are_positive() {
        assert_eq!(
            Invoice::create("i".into(), "o".into(), "c".into(), 0.0),
            Err(Error::NonPositiveAmount)
        );
        assert_eq!(invoice().adjust(-1.0), Err(Error::NonPositiveAmount));
    }
}
