//! Values that cannot be invalid once built: checked once, at the edge.

use serde::{Deserialize, Serialize};

/// Why a value was refused; the messages are the book's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Invalid {
    #[error("the store name cannot be blank")]
    StoreName,
    #[error("the store location cannot be blank")]
    StoreLocation,
    #[error("the product name cannot be blank")]
    ProductName,
    #[error("the product price cannot be negative")]
    NegativePrice,
    #[error("the product price must be greater than zero")]
    ZeroPrice,
    #[error("the product price cannot be more than 1000000")]
    PriceTooHigh,
}

/// The highest price a product may have: a million, so that any basket's total (at most
/// the baskets' maximum quantity of each of its items) stays far inside what a double counts exactly
/// in cents.
pub(crate) const MAX_PRICE: f64 = 1_000_000.0;

macro_rules! non_blank {
    ($name:ident, $error:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub(crate) struct $name(String);

        impl $name {
            pub(crate) fn parse(text: String) -> Result<$name, Invalid> {
                if text.trim().is_empty() {
                    Err($error)
                } else {
                    Ok($name(text))
                }
            }

            pub(crate) fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

non_blank!(StoreName, Invalid::StoreName);
non_blank!(Location, Invalid::StoreLocation);
non_blank!(ProductName, Invalid::ProductName);

/// A price in the mall's currency: finite and above zero (SPEC decision 6).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
pub(crate) struct Price(f64);

impl Price {
    pub(crate) fn parse(value: f64) -> Result<Price, Invalid> {
        if value.is_nan() || value < 0.0 {
            Err(Invalid::NegativePrice)
        } else if value == 0.0 {
            Err(Invalid::ZeroPrice)
        } else if value > MAX_PRICE {
            // Infinity included.
            Err(Invalid::PriceTooHigh)
        } else {
            Ok(Price(value))
        }
    }

    pub(crate) fn value(self) -> f64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_names_are_refused_with_the_books_messages() {
        assert_eq!(
            StoreName::parse("  ".into()).unwrap_err().to_string(),
            "the store name cannot be blank"
        );
        assert_eq!(
            Location::parse(String::new()).unwrap_err().to_string(),
            "the store location cannot be blank"
        );
        assert_eq!(
            ProductName::parse(String::new()).unwrap_err().to_string(),
            "the product name cannot be blank"
        );
        assert_eq!(
            StoreName::parse("Store ABC".into()).unwrap().as_str(),
            "Store ABC"
        );
    }

    #[test]
    fn prices_are_positive() {
        assert_eq!(Price::parse(-1.0), Err(Invalid::NegativePrice));
        assert_eq!(Price::parse(0.0), Err(Invalid::ZeroPrice));
        assert_eq!(Price::parse(f64::NAN), Err(Invalid::NegativePrice));
        assert_eq!(Price::parse(f64::INFINITY), Err(Invalid::PriceTooHigh));
        assert_eq!(Price::parse(1.7e308), Err(Invalid::PriceTooHigh));
        assert!(Price::parse(MAX_PRICE).is_ok());
        assert_eq!(Price::parse(9.99).map(Price::value), Ok(9.99));
    }
}
