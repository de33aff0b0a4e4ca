//! Carrying out what a saga decided: the next command staged in the outbox, a retry or the
//! end, and the history line that records it.

use std::time::Duration;

use messaging::Message;
use proto::am;
use serde::{Serialize, de::DeserializeOwned};

use super::{Entry, Orchestrator, SAGA_ID_HDR, SAGA_NAME_HDR, SAGA_STEP_HDR, SagaError};
use crate::definition::{Command, Instance, Next, Saga, Status};

impl<D: Serialize + DeserializeOwned + Send + Sync + 'static> Orchestrator<D> {
    /// Carries out `next`; the new deadline and what it waits for.
    pub(super) async fn follow(
        &self,
        tx: &mut db::Conn,
        id: &str,
        instance: &mut Instance<D>,
        next: Next,
        history: &mut Vec<Entry>,
    ) -> Result<Deadline, SagaError> {
        match next {
            Next::Send(command) => {
                self.send(tx, id, instance, &command).await?;
                entry(history, instance, "sent", command.name, "");
                Ok(Deadline::Reply(
                    db::now_micros() + micros(self.timing.step_timeout),
                ))
            }
            Next::RetryLater => {
                let delay = self
                    .timing
                    .retry_backoff
                    .saturating_mul(2_u32.saturating_pow(instance.attempts.saturating_sub(1)));
                Ok(Deadline::Retry(
                    db::now_micros() + micros(delay.min(Duration::from_secs(300))),
                ))
            }
            Next::Stop => {
                entry(history, instance, "finished", "", instance.status.as_str());
                metrics::counter!("saga_outcomes_total", "saga" => self.saga.name(),
                    "outcome" => instance.status.as_str())
                .increment(1);
                if instance.status == Status::CompensationFailed {
                    tracing::error!(
                        saga = self.saga.name(),
                        id,
                        step = instance.step,
                        "compensation keeps failing; saga parked"
                    );
                }
                Ok(Deadline::None)
            }
        }
    }

    async fn send(
        &self,
        tx: &mut db::Conn,
        id: &str,
        instance: &Instance<D>,
        command: &Command,
    ) -> Result<(), SagaError> {
        let message = Message::from_bytes(command.subject, command.name, command.payload.clone())
            .with_metadata(am::COMMAND_REPLY_CHANNEL_HDR, self.saga.reply_channel())
            .with_metadata(SAGA_ID_HDR, id)
            .with_metadata(SAGA_NAME_HDR, self.saga.name())
            .with_metadata(SAGA_STEP_HDR, Saga::step_token(instance))
            .about(id);
        self.outbox.stage(tx, [message]).await?;
        Ok(())
    }
}

/// When an instance needs attention next, and why.
pub(super) enum Deadline {
    Reply(i64),
    Retry(i64),
    None,
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

pub(super) fn entry<D>(
    history: &mut Vec<Entry>,
    instance: &Instance<D>,
    event: &str,
    message: &str,
    detail: &str,
) {
    history.push(Entry {
        at: db::now_micros(),
        step: instance.step,
        compensating: instance.compensating,
        event: event.to_owned(),
        message: message.to_owned(),
        detail: detail.to_owned(),
    });
}
