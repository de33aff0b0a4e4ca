//! A customer of the mall: who they are, how to text them, whether they may order.

/// Why a customer change was refused; the messages are the book's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    #[error("the customer name cannot be blank")]
    BlankName,
    #[error("the SMS number cannot be blank")]
    BlankSmsNumber,
    #[error("customer with that ID does not exist")]
    NotFound,
    #[error("the customer is already enabled")]
    AlreadyEnabled,
    #[error("the customer is already disabled")]
    AlreadyDisabled,
    #[error("customer is not authorized")]
    NotAuthorized,
    #[error("the customer is already registered")]
    AlreadyRegistered,
}

/// What happened to a customer (turned into `customersapi.*` messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Registered,
    SmsChanged,
    Enabled,
    Disabled,
    /// The customer asked to be forgotten: its record is gone, every copy must go too.
    Erased,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) sms_number: String,
    pub(crate) enabled: bool,
}

fn non_blank(text: String, error: Error) -> Result<String, Error> {
    if text.trim().is_empty() {
        Err(error)
    } else {
        Ok(text)
    }
}

impl Customer {
    /// A new, enabled customer.
    pub(crate) fn register(
        id: String,
        name: String,
        sms_number: String,
    ) -> Result<(Customer, Event), Error> {
        let name = non_blank(name, Error::BlankName)?;
        let sms_number = non_blank(sms_number, Error::BlankSmsNumber)?;
        Ok((
            Customer {
                id,
                name,
                sms_number,
                enabled: true,
            },
            Event::Registered,
        ))
    }

    pub(crate) fn enable(&mut self) -> Result<Event, Error> {
        if self.enabled {
            return Err(Error::AlreadyEnabled);
        }
        self.enabled = true;
        Ok(Event::Enabled)
    }

    pub(crate) fn disable(&mut self) -> Result<Event, Error> {
        if !self.enabled {
            return Err(Error::AlreadyDisabled);
        }
        self.enabled = false;
        Ok(Event::Disabled)
    }

    pub(crate) fn change_sms_number(&mut self, sms_number: String) -> Result<Option<Event>, Error> {
        let sms_number = non_blank(sms_number, Error::BlankSmsNumber)?;
        if sms_number == self.sms_number {
            return Ok(None);
        }
        self.sms_number = sms_number;
        Ok(Some(Event::SmsChanged))
    }

    /// May this customer place an order?
    pub(crate) fn authorize(&self) -> Result<(), Error> {
        if self.enabled {
            Ok(())
        } else {
            Err(Error::NotAuthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Customer {
        Customer::register("c1".into(), "Ada".into(), "555-0100".into())
            .unwrap()
            .0
    }

    #[test]
    fn a_registered_customer_is_enabled_and_authorized() {
        let customer = ada();
        assert!(customer.enabled);
        assert_eq!(customer.authorize(), Ok(()));
    }

    #[test]
    fn registration_needs_a_name_then_a_number() {
        assert_eq!(
            Customer::register("c".into(), String::new(), String::new()),
            Err(Error::BlankName)
        );
        assert_eq!(
            Customer::register("c".into(), "Ada".into(), " ".into()),
            Err(Error::BlankSmsNumber)
        );
    }

    #[test]
    fn a_disabled_customer_is_not_authorized() {
        let mut customer = ada();
        assert_eq!(customer.disable(), Ok(Event::Disabled));
        assert_eq!(customer.authorize(), Err(Error::NotAuthorized));
        assert_eq!(customer.disable(), Err(Error::AlreadyDisabled));
        assert_eq!(customer.enable(), Ok(Event::Enabled));
        assert_eq!(customer.enable(), Err(Error::AlreadyEnabled));
    }

    #[test]
    fn the_sms_number_changes_only_when_different() {
        let mut customer = ada();
        assert_eq!(
            customer.change_sms_number("555-0199".into()),
            Ok(Some(Event::SmsChanged))
        );
        assert_eq!(customer.change_sms_number("555-0199".into()), Ok(None));
        assert_eq!(
            customer.change_sms_number(String::new()),
            Err(Error::BlankSmsNumber)
        );
        assert_eq!(customer.sms_number, "555-0199");
    }
}
