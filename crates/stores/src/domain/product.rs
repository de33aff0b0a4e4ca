//! The Product aggregate: something a store sells, at a price.

use serde::{Deserialize, Serialize};

use crate::domain::names::{Price, ProductName};

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Product {
    exists: bool,
    removed: bool,
    price: f64,
}

#[derive(Debug, Clone)]
pub(crate) enum Command {
    Add {
        store_id: String,
        name: ProductName,
        description: String,
        sku: String,
        price: Price,
    },
    Rebrand {
        name: ProductName,
        description: String,
    },
    IncreasePrice {
        price: Price,
    },
    DecreasePrice {
        price: Price,
    },
    Remove,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum Event {
    Added {
        store_id: String,
        name: ProductName,
        description: String,
        sku: String,
        price: Price,
    },
    Rebranded {
        name: ProductName,
        description: String,
    },
    PriceIncreased {
        delta: f64,
    },
    PriceDecreased {
        delta: f64,
    },
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    #[error("the product already exists")]
    AlreadyExists,
    #[error("product with that ID does not exist")]
    NotFound,
    #[error("the price change would be a decrease")]
    WouldDecrease,
    #[error("the price change would be an increase")]
    WouldIncrease,
}

impl es::DomainEvent for Event {
    fn name(&self) -> &'static str {
        match self {
            Event::Added { .. } => "stores.ProductAdded",
            Event::Rebranded { .. } => "stores.ProductRebranded",
            Event::PriceIncreased { .. } => "stores.ProductPriceIncreased",
            Event::PriceDecreased { .. } => "stores.ProductPriceDecreased",
            Event::Removed => "stores.ProductRemoved",
        }
    }
}

impl es::Aggregate for Product {
    const TYPE: &'static str = "stores.Product";
    type Command = Command;
    type Event = Event;
    type Error = Error;

    fn handle(&self, command: Command) -> Result<Vec<Event>, Error> {
        if let Command::Add {
            store_id,
            name,
            description,
            sku,
            price,
        } = command
        {
            return if self.exists {
                Err(Error::AlreadyExists)
            } else {
                Ok(vec![Event::Added {
                    store_id,
                    name,
                    description,
                    sku,
                    price,
                }])
            };
        }
        if !self.exists || self.removed {
            return Err(Error::NotFound);
        }
        let delta = |price: Price| price.value() - self.price;
        match command {
            Command::Add { .. } => Err(Error::AlreadyExists),
            Command::Rebrand { name, description } => {
                Ok(vec![Event::Rebranded { name, description }])
            }
            Command::IncreasePrice { price } if delta(price) < 0.0 => Err(Error::WouldDecrease),
            // The same price again changes nothing: no event.
            Command::IncreasePrice { price } if delta(price) == 0.0 => Ok(vec![]),
            Command::IncreasePrice { price } => Ok(vec![Event::PriceIncreased {
                delta: delta(price),
            }]),
            Command::DecreasePrice { price } if delta(price) > 0.0 => Err(Error::WouldIncrease),
            Command::DecreasePrice { price } if delta(price) == 0.0 => Ok(vec![]),
            Command::DecreasePrice { price } => Ok(vec![Event::PriceDecreased {
                delta: delta(price),
            }]),
            Command::Remove => Ok(vec![Event::Removed]),
        }
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Added { price, .. } => {
                self.exists = true;
                self.price = price.value();
            }
            Event::Rebranded { .. } => {}
            Event::PriceIncreased { delta } | Event::PriceDecreased { delta } => {
                self.price += delta
            }
            Event::Removed => self.removed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use es::testing::given;

    use super::*;

    fn price(value: f64) -> Price {
        Price::parse(value).unwrap()
    }

    fn added() -> Event {
        Event::Added {
            store_id: "s1".into(),
            name: ProductName::parse("Product ABC".into()).unwrap(),
            description: "A product".into(),
            sku: "productABC".into(),
            price: price(10.0),
        }
    }

    #[test]
    fn a_price_increase_records_the_delta() {
        given::<Product>([added()])
            .when(Command::IncreasePrice { price: price(12.5) })
            .then([Event::PriceIncreased { delta: 2.5 }]);
    }

    #[test]
    fn a_lower_price_is_not_an_increase() {
        given::<Product>([added()])
            .when(Command::IncreasePrice { price: price(9.0) })
            .then_err(Error::WouldDecrease);
    }

    #[test]
    fn a_price_decrease_records_a_negative_delta() {
        given::<Product>([added()])
            .when(Command::DecreasePrice { price: price(7.5) })
            .then([Event::PriceDecreased { delta: -2.5 }]);
        given::<Product>([added()])
            .when(Command::DecreasePrice { price: price(11.0) })
            .then_err(Error::WouldIncrease);
    }

    #[test]
    fn the_same_price_changes_nothing() {
        given::<Product>([added()])
            .when(Command::IncreasePrice { price: price(10.0) })
            .then([]);
        given::<Product>([added()])
            .when(Command::DecreasePrice { price: price(10.0) })
            .then([]);
    }

    #[test]
    fn price_changes_accumulate() {
        let given = given::<Product>([
            added(),
            Event::PriceIncreased { delta: 5.0 },
            Event::PriceDecreased { delta: -1.0 },
        ]);
        given
            .when(Command::DecreasePrice { price: price(14.0) })
            .then([]);
    }

    #[test]
    fn a_removed_product_is_gone() {
        given::<Product>([added()])
            .when(Command::Remove)
            .then([Event::Removed]);
        given::<Product>([added(), Event::Removed])
            .when(Command::Remove)
            .then_err(Error::NotFound);
        given::<Product>([added(), Event::Removed])
            .when(Command::IncreasePrice { price: price(20.0) })
            .then_err(Error::NotFound);
    }

    #[test]
    fn an_unknown_product_is_not_found() {
        given::<Product>([])
            .when(Command::Remove)
            .then_err(Error::NotFound);
    }

    #[test]
    fn a_product_is_rebranded() {
        let name = ProductName::parse("New".into()).unwrap();
        given::<Product>([added()])
            .when(Command::Rebrand {
                name: name.clone(),
                description: "d".into(),
            })
            .then([Event::Rebranded {
                name,
                description: "d".into(),
            }]);
    }
}
