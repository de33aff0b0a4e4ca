//! Given/when/then for sagas, on the pure state machine (no database):
//!
//! ```text
//! given(&saga, data).then_sent(["customersapi.AuthorizeCustomer"])
//!     .reply(false).then_sent([.., "ordersapi.RejectOrder"]).reply(true).then_status(Status::Compensated);
//! ```

use crate::{Instance, Next, Reply, Saga, Status};

/// A saga instance driven by a test, remembering every command it sent.
pub struct Scenario<'a, D> {
    saga: &'a Saga<D>,
    instance: Instance<D>,
    sent: Vec<&'static str>,
    last: Option<Next>,
}

/// Begins an instance of `saga` with `data`.
pub fn given<D: std::fmt::Debug>(saga: &Saga<D>, data: D) -> Scenario<'_, D> {
    let (instance, next) = saga.begin(data);
    let mut scenario = Scenario {
        saga,
        instance,
        sent: Vec::new(),
        last: None,
    };
    scenario.record(next);
    scenario
}

impl<D: std::fmt::Debug> Scenario<'_, D> {
    fn record(&mut self, next: Next) {
        if let Next::Send(command) = &next {
            self.sent.push(command.name);
        }
        self.last = Some(next);
    }

    /// The current step answers with `am.Success` or `am.Failure`.
    #[must_use]
    pub fn reply(self, success: bool) -> Self {
        let name = if success {
            proto::am::SUCCESS_REPLY
        } else {
            proto::am::FAILURE_REPLY
        };
        self.reply_with(Reply {
            name: name.to_owned(),
            success,
            payload: Vec::new(),
        })
    }

    /// The current step answers with `reply`.
    ///
    /// # Panics
    /// When the saga ignores the reply (use [`Scenario::reply_ignored`] for that).
    #[must_use]
    pub fn reply_with(mut self, reply: Reply) -> Self {
        let token = Saga::step_token(&self.instance);
        let next = self
            .saga
            .reply(&mut self.instance, &reply, Some(&token))
            .unwrap_or_else(|e| panic!("reply ignored: {e}"));
        self.record(next);
        self
    }

    /// A reply marked for step `token` arrives; asserts it is ignored.
    ///
    /// # Panics
    /// When the saga applies it.
    #[must_use]
    pub fn reply_ignored(mut self, success: bool, token: Option<&str>) -> Self {
        let reply = Reply {
            name: proto::am::SUCCESS_REPLY.to_owned(),
            success,
            payload: Vec::new(),
        };
        let before = self.instance.step;
        if let Ok(next) = self.saga.reply(&mut self.instance, &reply, token) {
            panic!("the reply was applied ({next:?}) at step {before}");
        }
        self
    }

    /// The current step times out.
    #[must_use]
    pub fn timeout(mut self) -> Self {
        let next = self.saga.timeout(&mut self.instance);
        self.record(next);
        self
    }

    /// The pending compensation retry is due.
    #[must_use]
    pub fn retry(mut self) -> Self {
        let next = self.saga.retry(&self.instance);
        self.record(next);
        self
    }

    /// Asserts every command sent so far, in order.
    ///
    /// # Panics
    /// When they differ.
    #[track_caller]
    #[must_use]
    pub fn then_sent<const N: usize>(self, expected: [&str; N]) -> Self {
        assert_eq!(self.sent, expected, "commands sent");
        self
    }

    /// Asserts the instance's status.
    ///
    /// # Panics
    /// When it differs.
    #[track_caller]
    #[must_use]
    pub fn then_status(self, expected: Status) -> Self {
        assert_eq!(
            self.instance.status, expected,
            "status of {:?}",
            self.instance
        );
        self
    }

    /// Asserts what the last transition asked for.
    ///
    /// # Panics
    /// When it differs.
    #[track_caller]
    #[must_use]
    pub fn then_next(self, expected: &Next) -> Self {
        assert_eq!(self.last.as_ref(), Some(expected));
        self
    }

    /// The instance.
    pub fn instance(&self) -> &Instance<D> {
        &self.instance
    }
}
