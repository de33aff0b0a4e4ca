//! Commands and replies, per the book's header contract.
//!
//! A command carries `COMMAND_REPLY_CHANNEL` (where the reply goes) and any other `COMMAND_*`
//! keys, which come back on the reply as `REPLY_*` (`COMMAND_SAGA_ID` → `REPLY_SAGA_ID`), with
//! `REPLY_OUTCOME` = `SUCCESS` or `FAILURE`. A business failure rolls back the handler's own
//! writes (a savepoint) and still commits the FAILURE reply and the inbox row; an
//! infrastructure error is retried like any handler error and is never turned into a FAILURE.
//! A command without a reply channel can never be answered: it is dead-lettered.

use async_trait::async_trait;
use proto::am;

use crate::{
    Incoming, Message, Outbox,
    subscription::{Handler, HandlerError},
};

/// The answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    name: String,
    payload: Vec<u8>,
}

impl Reply {
    /// `am.Success`, no payload.
    pub fn success() -> Reply {
        Reply {
            name: am::SUCCESS_REPLY.to_owned(),
            payload: Vec::new(),
        }
    }

    /// `am.Failure`, no payload.
    pub fn failure() -> Reply {
        Reply {
            name: am::FAILURE_REPLY.to_owned(),
            payload: Vec::new(),
        }
    }

    /// A named reply with a payload.
    pub fn new(name: impl Into<String>, payload: &impl prost::Message) -> Reply {
        Reply {
            name: name.into(),
            payload: payload.encode_to_vec(),
        }
    }

    /// A reply with a payload, under its catalog name (e.g. `depotapi.CreatedShoppingListReply`).
    pub fn of<M: proto::Payload>(payload: &M) -> Reply {
        Reply::new(payload.name(), payload)
    }
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The business said no: a FAILURE reply (with `reply`, or `am.Failure`), the handler's
    /// writes rolled back.
    #[error("{reason}")]
    Failed {
        /// Why, for the log.
        reason: String,
        /// A specific reply to send with the FAILURE outcome.
        reply: Option<Reply>,
    },
    /// Infrastructure trouble or a bad message: handled as [`HandlerError`] (retry or dead letter).
    #[error(transparent)]
    Handler(#[from] HandlerError),
}

impl CommandError {
    /// A business failure answered with `am.Failure`.
    pub fn failed(reason: impl std::fmt::Display) -> CommandError {
        CommandError::Failed {
            reason: reason.to_string(),
            reply: None,
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(error: sqlx::Error) -> CommandError {
        CommandError::Handler(error.into())
    }
}

impl From<anyhow::Error> for CommandError {
    fn from(error: anyhow::Error) -> CommandError {
        CommandError::Handler(error.into())
    }
}

/// Handles one command inside the inbox transaction and says what to reply.
#[async_trait]
pub trait CommandHandler: Send + Sync + 'static {
    /// Carries out `command` through `tx`.
    async fn handle(&self, tx: &mut db::Conn, command: &Incoming) -> Result<Reply, CommandError>;
}

/// Turns a [`CommandHandler`] into a subscription [`Handler`] that stages replies in `outbox`.
pub fn replying(outbox: Outbox, handler: impl CommandHandler) -> impl Handler {
    Replying { outbox, handler }
}

struct Replying<C> {
    outbox: Outbox,
    handler: C,
}

#[async_trait]
impl<C: CommandHandler> Handler for Replying<C> {
    async fn handle(&self, tx: &mut db::Conn, command: &Incoming) -> Result<(), HandlerError> {
        let Some(reply_to) = command
            .metadata(am::COMMAND_REPLY_CHANNEL_HDR)
            .filter(|c| !c.is_empty())
        else {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "command {} {} has no {}",
                command.name(),
                command.id(),
                am::COMMAND_REPLY_CHANNEL_HDR
            )));
        };
        // Never released: the transaction's commit releases it, one round trip less.
        sqlx::query("SAVEPOINT command").execute(&mut *tx).await?;
        let (reply, outcome) = match self.handler.handle(tx, command).await {
            Ok(reply) => (reply, am::OUTCOME_SUCCESS),
            Err(CommandError::Failed { reason, reply }) => {
                sqlx::query("ROLLBACK TO SAVEPOINT command")
                    .execute(&mut *tx)
                    .await?;
                tracing::info!(command = command.name(), id = command.id(), %reason, "command failed");
                (reply.unwrap_or_else(Reply::failure), am::OUTCOME_FAILURE)
            }
            Err(CommandError::Handler(error)) => return Err(error),
        };
        let mut message = Message::from_bytes(reply_to, reply.name, reply.payload);
        for (key, value) in &command.envelope.metadata {
            if let Some(rest) = key.strip_prefix(am::COMMAND_HDR_PREFIX)
                && key != am::COMMAND_NAME_HDR
            {
                message =
                    message.with_metadata(format!("{}{rest}", am::REPLY_HDR_PREFIX), value.clone());
            }
        }
        let mut message = message.with_metadata(am::REPLY_OUTCOME_HDR, outcome);
        // About the command's aggregate (the saga's): the orchestrator's replies then keep one
        // saga's order while different sagas' are handled side by side.
        if let Some(key) = command.key() {
            message = message.about(key);
        }
        self.outbox.stage(tx, [message]).await?;
        Ok(())
    }
}
