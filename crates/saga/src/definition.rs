//! A saga's definition and its pure state machine: what to send next, given the instance and
//! what happened. No I/O here; [`crate::Orchestrator`] persists and sends.

use serde::{Deserialize, Serialize};

/// A command a step sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Where it goes, e.g. `mallbots.customers.commands`.
    pub subject: &'static str,
    /// Its name, e.g. `customersapi.AuthorizeCustomer`.
    pub name: &'static str,
    /// The protobuf payload.
    pub payload: Vec<u8>,
}

impl Command {
    /// A command named `name` to `subject` carrying `payload`.
    pub fn new(
        subject: &'static str,
        name: &'static str,
        payload: &impl prost::Message,
    ) -> Command {
        Command {
            subject,
            name,
            payload: payload.encode_to_vec(),
        }
    }

    /// `payload` under its catalog name, to its catalog subject.
    pub fn of<M: proto::Payload>(payload: &M) -> Command {
        Command::new(M::SUBJECT, payload.name(), payload)
    }
}

/// A reply as the saga sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The reply name (`am.Success`, `depotapi.CreatedShoppingListReply`, …).
    pub name: String,
    /// `REPLY_OUTCOME == SUCCESS`.
    pub success: bool,
    /// The protobuf payload (empty for `am.Success`/`am.Failure`).
    pub payload: Vec<u8>,
}

/// Reads a reply's payload into the saga's data; an `Err` fails the step.
pub type OnReply<D> = fn(&mut D, &Reply) -> Result<(), String>;

/// One step: an action, a compensation, or both, and what to take from the action's reply.
pub struct Step<D> {
    action: Option<fn(&D) -> Command>,
    compensation: Option<fn(&D) -> Command>,
    on_reply: Vec<(&'static str, OnReply<D>)>,
}

impl<D> Step<D> {
    /// A step that sends `action`.
    pub fn act(action: fn(&D) -> Command) -> Step<D> {
        Step {
            action: Some(action),
            compensation: None,
            on_reply: Vec::new(),
        }
    }

    /// A step with only a compensation (the book's step 0, RejectOrder).
    pub fn compensation_only(compensation: fn(&D) -> Command) -> Step<D> {
        Step {
            action: None,
            compensation: Some(compensation),
            on_reply: Vec::new(),
        }
    }

    /// Undoes this step's action when a later step fails.
    #[must_use]
    pub fn compensate(mut self, compensation: fn(&D) -> Command) -> Step<D> {
        self.compensation = Some(compensation);
        self
    }

    /// Applies a successful reply named `name` to the data (e.g. keep the shopping list id).
    #[must_use]
    pub fn on_reply(mut self, name: &'static str, handler: OnReply<D>) -> Step<D> {
        self.on_reply.push((name, handler));
        self
    }

    fn command(&self, compensating: bool) -> Option<fn(&D) -> Command> {
        if compensating {
            self.compensation
        } else {
            self.action
        }
    }
}

/// Where an instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for a reply (or for a compensation retry).
    Running,
    /// Every action succeeded.
    Completed,
    /// A step failed and every compensation succeeded.
    Compensated,
    /// A compensation kept failing: parked for an operator, never silently dropped.
    CompensationFailed,
}

impl Status {
    /// The status's name as stored and shown (`running`, `compensation_failed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Compensated => "compensated",
            Status::CompensationFailed => "compensation_failed",
        }
    }

    /// Parses [`Status::as_str`].
    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Running,
            Status::Completed,
            Status::Compensated,
            Status::CompensationFailed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// One saga instance's state (the data plus the position).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance<D> {
    /// The saga data.
    pub data: D,
    /// The step whose command was sent last (-1 before the first).
    pub step: i32,
    /// Walking backwards, undoing.
    pub compensating: bool,
    /// Where it stands.
    pub status: Status,
    /// Failed tries of the current compensation.
    pub attempts: u32,
}

/// What the orchestrator must do after a transition.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Send this command for the instance's current step.
    Send(Command),
    /// Retry the current compensation later (after a back-off).
    RetryLater,
    /// Nothing to send: the instance finished (see its status) or was parked.
    Stop,
}

/// Why an event did not change an instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// The instance is no longer running.
    #[error("the saga already finished")]
    Finished,
    /// The reply answers a step the instance is no longer waiting for.
    #[error("the reply answers step {reply}, the saga waits for step {current}")]
    Stale {
        /// The step the reply answers.
        reply: String,
        /// The step awaited.
        current: String,
    },
}

/// A saga: a name, the subject replies come back on, and its steps.
pub struct Saga<D> {
    name: &'static str,
    reply_channel: &'static str,
    steps: Vec<Step<D>>,
    max_compensation_attempts: u32,
}

impl<D> Saga<D> {
    /// A saga with no steps yet.
    pub fn new(name: &'static str, reply_channel: &'static str) -> Saga<D> {
        Saga {
            name,
            reply_channel,
            steps: Vec::new(),
            max_compensation_attempts: 5,
        }
    }

    /// Appends a step.
    #[must_use]
    pub fn step(mut self, step: Step<D>) -> Saga<D> {
        self.steps.push(step);
        self
    }

    /// Tries of a failing compensation before the instance is parked (default 5).
    #[must_use]
    pub fn max_compensation_attempts(mut self, attempts: u32) -> Saga<D> {
        self.max_compensation_attempts = attempts.max(1);
        self
    }

    /// The saga's name (`COMMAND_SAGA_NAME`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where replies come back.
    pub fn reply_channel(&self) -> &'static str {
        self.reply_channel
    }

    /// The position marker a command carries and its reply echoes (`3`; `c1` while
    /// compensating; `c1.2` for the second retry of that compensation), so a late reply to an
    /// earlier step or try is recognised and ignored.
    pub fn step_token(instance: &Instance<D>) -> String {
        let direction = if instance.compensating { "c" } else { "" };
        match instance.attempts {
            0 => format!("{direction}{}", instance.step),
            tries => format!("{direction}{}.{tries}", instance.step),
        }
    }

    /// A new instance at its first step.
    pub fn begin(&self, data: D) -> (Instance<D>, Next) {
        let mut instance = Instance {
            data,
            step: -1,
            compensating: false,
            status: Status::Running,
            attempts: 0,
        };
        let next = self.advance(&mut instance);
        (instance, next)
    }

    /// Applies a reply. `token` is the step marker the reply echoes, if it carries one.
    ///
    /// # Errors
    /// [`Ignored`] when the reply must not change the instance (finished, or stale).
    pub fn reply(
        &self,
        instance: &mut Instance<D>,
        reply: &Reply,
        token: Option<&str>,
    ) -> Result<Next, Ignored> {
        if instance.status != Status::Running {
            return Err(Ignored::Finished);
        }
        let current = Self::step_token(instance);
        if let Some(token) = token
            && token != current
        {
            return Err(Ignored::Stale {
                reply: token.to_owned(),
                current,
            });
        }
        let mut success = reply.success;
        if success && !instance.compensating {
            // Success handlers only ever see successes.
            if let Some(step) = self.step_at(instance.step)
                && let Some((_, handler)) =
                    step.on_reply.iter().find(|(name, _)| *name == reply.name)
                && let Err(reason) = handler(&mut instance.data, reply)
            {
                tracing::warn!(saga = self.name, %reason, "reply handler refused the reply; the step fails");
                success = false;
            }
        }
        Ok(match (success, instance.compensating) {
            (true, _) => {
                instance.attempts = 0;
                self.advance(instance)
            }
            (false, false) => {
                // The failed step's own compensation is not run: its action did not happen.
                instance.compensating = true;
                self.advance(instance)
            }
            (false, true) => self.compensation_failed(instance),
        })
    }

    /// The current step got no reply in time.
    pub fn timeout(&self, instance: &mut Instance<D>) -> Next {
        if instance.status != Status::Running {
            return Next::Stop;
        }
        if instance.compensating {
            self.compensation_failed(instance)
        } else {
            instance.compensating = true;
            self.advance(instance)
        }
    }

    /// Re-sends the current compensation (after [`Next::RetryLater`]).
    pub fn retry(&self, instance: &Instance<D>) -> Next {
        match self
            .step_at(instance.step)
            .and_then(|step| step.command(true))
        {
            Some(command) if instance.status == Status::Running && instance.compensating => {
                Next::Send(command(&instance.data))
            }
            _ => Next::Stop,
        }
    }

    fn compensation_failed(&self, instance: &mut Instance<D>) -> Next {
        instance.attempts += 1;
        if instance.attempts >= self.max_compensation_attempts {
            instance.status = Status::CompensationFailed;
            Next::Stop
        } else {
            Next::RetryLater
        }
    }

    fn step_at(&self, step: i32) -> Option<&Step<D>> {
        usize::try_from(step)
            .ok()
            .and_then(|index| self.steps.get(index))
    }

    /// Moves to the next step with something to send in the current direction, or finishes.
    fn advance(&self, instance: &mut Instance<D>) -> Next {
        let direction = if instance.compensating { -1 } else { 1 };
        let mut step = instance.step + direction;
        while let Some(candidate) = self.step_at(step) {
            if let Some(command) = candidate.command(instance.compensating) {
                instance.step = step;
                return Next::Send(command(&instance.data));
            }
            step += direction;
        }
        instance.status = if instance.compensating {
            Status::Compensated
        } else {
            Status::Completed
        };
        Next::Stop
    }
}
