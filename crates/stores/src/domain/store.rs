//! The Store aggregate: a shop in the mall and whether it takes part.

use serde::{Deserialize, Serialize};

use crate::domain::names::{Location, StoreName};

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Store {
    exists: bool,
    participating: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Command {
    Create {
        name: StoreName,
        location: Location,
        owner: String,
    },
    EnableParticipation,
    DisableParticipation,
    Rebrand {
        name: StoreName,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum Event {
    Created {
        name: StoreName,
        location: Location,
        /// Who created it (a store owner's subject); empty in events from before owners.
        #[serde(default)]
        owner: String,
    },
    ParticipationEnabled,
    ParticipationDisabled,
    Rebranded {
        name: StoreName,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    #[error("the store already exists")]
    AlreadyExists,
    #[error("store with that ID does not exist")]
    NotFound,
    #[error("the store is already participating")]
    AlreadyParticipating,
    #[error("the store is already not participating")]
    AlreadyNotParticipating,
}

impl es::DomainEvent for Event {
    fn name(&self) -> &'static str {
        match self {
            Event::Created { .. } => "stores.StoreCreated",
            Event::ParticipationEnabled => "stores.StoreParticipationEnabled",
            Event::ParticipationDisabled => "stores.StoreParticipationDisabled",
            Event::Rebranded { .. } => "stores.StoreRebranded",
        }
    }
}

impl es::Aggregate for Store {
    const TYPE: &'static str = "stores.Store";
    type Command = Command;
    type Event = Event;
    type Error = Error;

    fn handle(&self, command: Command) -> Result<Vec<Event>, Error> {
        if let Command::Create {
            name,
            location,
            owner,
        } = command
        {
            return if self.exists {
                Err(Error::AlreadyExists)
            } else {
                Ok(vec![Event::Created {
                    name,
                    location,
                    owner,
                }])
            };
        }
        if !self.exists {
            return Err(Error::NotFound);
        }
        match command {
            Command::Create { .. } => Err(Error::AlreadyExists),
            Command::EnableParticipation if self.participating => Err(Error::AlreadyParticipating),
            Command::EnableParticipation => Ok(vec![Event::ParticipationEnabled]),
            Command::DisableParticipation if !self.participating => {
                Err(Error::AlreadyNotParticipating)
            }
            Command::DisableParticipation => Ok(vec![Event::ParticipationDisabled]),
            Command::Rebrand { name } => Ok(vec![Event::Rebranded { name }]),
        }
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Created { .. } => self.exists = true,
            Event::ParticipationEnabled => self.participating = true,
            Event::ParticipationDisabled => self.participating = false,
            Event::Rebranded { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use es::testing::given;

    use super::*;

    fn name(text: &str) -> StoreName {
        StoreName::parse(text.into()).unwrap()
    }

    fn created() -> Event {
        Event::Created {
            name: name("Store ABC"),
            location: Location::parse("The mall".into()).unwrap(),
            owner: "owner-1".into(),
        }
    }

    #[test]
    fn a_new_store_is_created() {
        let location = Location::parse("The mall".into()).unwrap();
        given::<Store>([])
            .when(Command::Create {
                name: name("Store ABC"),
                location,
                owner: "owner-1".into(),
            })
            .then([created()]);
    }

    #[test]
    fn a_store_cannot_be_created_twice() {
        let location = Location::parse("Elsewhere".into()).unwrap();
        given::<Store>([created()])
            .when(Command::Create {
                name: name("Again"),
                location,
                owner: "owner-1".into(),
            })
            .then_err(Error::AlreadyExists);
    }

    #[test]
    fn commands_for_an_unknown_store_are_not_found() {
        given::<Store>([])
            .when(Command::EnableParticipation)
            .then_err(Error::NotFound);
        given::<Store>([])
            .when(Command::Rebrand { name: name("X") })
            .then_err(Error::NotFound);
    }

    #[test]
    fn participation_is_enabled_once() {
        given::<Store>([created()])
            .when(Command::EnableParticipation)
            .then([Event::ParticipationEnabled]);
        given::<Store>([created(), Event::ParticipationEnabled])
            .when(Command::EnableParticipation)
            .then_err(Error::AlreadyParticipating);
    }

    #[test]
    fn participation_is_disabled_only_when_enabled() {
        given::<Store>([created()])
            .when(Command::DisableParticipation)
            .then_err(Error::AlreadyNotParticipating);
        given::<Store>([created(), Event::ParticipationEnabled])
            .when(Command::DisableParticipation)
            .then([Event::ParticipationDisabled]);
    }

    #[test]
    fn a_store_is_rebranded() {
        given::<Store>([created()])
            .when(Command::Rebrand { name: name("New") })
            .then([Event::Rebranded { name: name("New") }]);
    }
}
