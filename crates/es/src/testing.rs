//! Given/when/then for aggregates, after cqrs-es's `TestFramework`:
//!
//! ```text
//! given([Event::Created { .. }]).when(Command::Rebrand { .. }).then([Event::Rebranded { .. }]);
//! given([]).when(Command::Rebrand { .. }).then_err(Error::NotFound);
//! ```

use std::fmt::Debug;

use crate::Aggregate;

/// An aggregate rebuilt from past events.
#[derive(Debug)]
pub struct Given<A> {
    aggregate: A,
}

/// The outcome of one command.
#[derive(Debug)]
pub struct When<A: Aggregate> {
    result: Result<Vec<A::Event>, A::Error>,
}

/// Starts a scenario from `events` applied in order.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let mut aggregate = A::default();
    for event in events {
        aggregate.apply(&event);
    }
    Given { aggregate }
}

impl<A: Aggregate> Given<A> {
    /// Runs `command` on the rebuilt state.
    pub fn when(self, command: A::Command) -> When<A> {
        When {
            result: self.aggregate.handle(command),
        }
    }

    /// The rebuilt state, for assertions on it.
    pub fn state(&self) -> &A {
        &self.aggregate
    }
}

impl<A: Aggregate> When<A>
where
    A::Event: PartialEq,
    A::Error: PartialEq,
{
    /// Asserts the command produced exactly `expected`.
    ///
    /// # Panics
    /// When it produced other events or was refused.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) {
        let expected: Vec<_> = expected.into_iter().collect();
        match self.result {
            Ok(events) => assert_eq!(events, expected, "the command produced other events"),
            Err(error) => {
                panic!("expected events {expected:?}, the command was refused: {error:?}")
            }
        }
    }

    /// Asserts the command was refused with `expected`.
    ///
    /// # Panics
    /// When it was accepted or refused for another reason.
    #[track_caller]
    pub fn then_err(self, expected: A::Error) {
        match self.result {
            Ok(events) => {
                panic!("expected the error {expected:?}, the command produced {events:?}")
            }
            Err(error) => assert_eq!(
                error, expected,
                "the command was refused for another reason"
            ),
        }
    }
}

impl<A: Aggregate> When<A> {
    /// The raw outcome, for assertions the helpers above do not cover.
    pub fn result(self) -> Result<Vec<A::Event>, A::Error>
    where
        A::Event: Debug,
    {
        self.result
    }
}
