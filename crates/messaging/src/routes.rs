//! Typed routes: a subscription built from the payload types its handler takes.
//!
//! `messaging::events(schema, consumer, handler)` with `handler: On<M>` consumes `M`: one payload
//! type (`On<pb::BasketCheckedOut>`) or an enum of them declared with [`messages!`]. The subject,
//! the names accepted (hence the AsyncAPI document's receive operations) and the decoding come
//! from the payloads' [`proto::Payload`] implementations; the handler matches on the enum, so a
//! message it is given but does not handle is a compile error, and one it does not take is never
//! accepted.

use std::{marker::PhantomData, sync::Arc};

use async_trait::async_trait;
use proto::{Kind, Payload};

use crate::{
    CommandError, CommandHandler, Handler, HandlerError, Incoming, Outbox, Reply, Subscription,
    replying,
};

/// What one subscription's handler takes: a payload type, or an enum of them ([`messages!`]).
pub trait Messages: Sized + Send + 'static {
    /// Every payload's names, subject and kind.
    fn catalog() -> Vec<(&'static [&'static str], &'static str, Kind)>;
    /// Decodes `message` as the payload its name says.
    ///
    /// # Errors
    /// Permanent: a name not taken here, or a payload that does not decode.
    fn decode(message: &Incoming) -> Result<Self, HandlerError>;

    /// Whether a message named `name` is one of these (no allocation: asked per message).
    fn takes(name: &str) -> bool;

    /// Every name taken.
    fn names() -> Vec<&'static str> {
        Self::catalog()
            .into_iter()
            .flat_map(|(names, _, _)| names.iter().copied())
            .collect()
    }
}

impl<P: Payload> Messages for P {
    fn catalog() -> Vec<(&'static [&'static str], &'static str, Kind)> {
        vec![(P::NAMES, P::SUBJECT, P::KIND)]
    }

    fn takes(name: &str) -> bool {
        P::NAMES.contains(&name)
    }

    fn decode(message: &Incoming) -> Result<P, HandlerError> {
        if !P::takes(message.name()) {
            return Err(unrouted(message));
        }
        message.decode()
    }
}

/// The error of a message whose name no route takes (never accepted, so never seen).
#[doc(hidden)]
pub fn unrouted(message: &Incoming) -> HandlerError {
    HandlerError::Permanent(anyhow::anyhow!("{} is not routed here", message.name()))
}

/// Declares an enum of payloads one handler takes from one subject, one variant each:
///
/// ```ignore
/// messaging::messages! {
///     pub(crate) enum StoreEvent {
///         Created(proto::stores::StoreCreated),
///         Rebranded(proto::stores::StoreRebranded),
///     }
/// }
/// ```
#[macro_export]
macro_rules! messages {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident($payload:ty)),+ $(,)? }) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                #[doc = concat!("`", stringify!($payload), "`.")]
                $variant($payload)
            ),+
        }

        impl $crate::Messages for $name {
            fn catalog() -> Vec<(&'static [&'static str], &'static str, $crate::Kind)> {
                vec![$((
                    <$payload as $crate::Payload>::NAMES,
                    <$payload as $crate::Payload>::SUBJECT,
                    <$payload as $crate::Payload>::KIND,
                )),+]
            }

            fn takes(name: &str) -> bool {
                $(<$payload as $crate::Payload>::NAMES.contains(&name))||+
            }

            fn decode(message: &$crate::Incoming) -> Result<Self, $crate::HandlerError> {
                $(
                    if <$payload as $crate::Payload>::NAMES.contains(&message.name()) {
                        return message.decode().map($name::$variant);
                    }
                )+
                Err($crate::routes::unrouted(message))
            }
        }
    };
}

/// What an [`On`] comes to: done, or why not.
pub type Handled = Result<(), HandlerError>;
/// What an [`Answer`] comes to: the reply, or why there is none.
pub type Answered = Result<Reply, CommandError>;

/// Handles the events (or replies) `M` inside the inbox transaction: see [`Handler`].
#[async_trait]
pub trait On<M>: Send + Sync + 'static {
    /// Applies `event`, the payload of `message`, through `tx`.
    async fn on(&self, tx: &mut db::Conn, event: M, message: &Incoming) -> Handled;
}

/// Carries out the commands `M` inside the inbox transaction: see [`CommandHandler`].
#[async_trait]
pub trait Answer<M>: Send + Sync + 'static {
    /// Carries out `command`, the payload of `message`, through `tx`, saying what to reply.
    async fn answer(&self, tx: &mut db::Conn, command: M, message: &Incoming) -> Answered;
}

/// Empties what a handler built, so that its rewound consumer rebuilds it: see
/// [`Handler::reset`].
#[async_trait]
pub trait Reset: Send + Sync + 'static {
    /// Empties what `consumer`'s messages built.
    async fn reset(&self, tx: &mut db::Conn, consumer: &str) -> Result<(), HandlerError>;
}

type Resetting<H> = for<'a> fn(
    &'a H,
    &'a mut db::Conn,
    &'a str,
) -> futures::future::BoxFuture<'a, Result<(), HandlerError>>;

/// Routes of events (and replies) to an [`On`].
pub struct Events;
/// Routes of commands to an [`Answer`], replies staged in this outbox.
pub struct Commands(Outbox);

/// Events or commands.
pub trait Kinds {
    /// Whether the routes take commands.
    const COMMANDS: bool;
}

impl Kinds for Events {
    const COMMANDS: bool = false;
}

impl Kinds for Commands {
    const COMMANDS: bool = true;
}

/// A subscription whose messages go to `H` as `M`, events or commands (`K`).
pub struct Routes<H, M, K> {
    subscription: Subscription,
    handler: H,
    kind: K,
    reset: Option<Resetting<H>>,
    messages: PhantomData<fn() -> M>,
}

/// Consumer `consumer` of `schema` handing the events (or replies) `M` to `handler`; `M` is
/// inferred when `handler` takes one kind of message only.
pub fn events<M: Messages, H: On<M>>(
    schema: &'static str,
    consumer: &str,
    handler: H,
) -> Routes<H, M, Events> {
    Routes::new(schema, consumer, handler, Events)
}

/// Consumer `consumer` of `schema` handing the commands `M` to `handler`, its replies staged in
/// `outbox`.
pub fn commands<M: Messages, H: Answer<M>>(
    schema: &'static str,
    consumer: &str,
    outbox: Outbox,
    handler: H,
) -> Routes<H, M, Commands> {
    Routes::new(schema, consumer, handler, Commands(outbox))
}

impl<H: On<M>, M: Messages> Routes<H, M, Events> {
    /// Lets the consumer be rewound: `handler` empties what it built first.
    #[must_use]
    pub fn rewindable(mut self) -> Self
    where
        H: Reset,
    {
        self.reset = Some(|handler, tx, consumer| handler.reset(tx, consumer));
        self
    }
}

impl<H, M: Messages, K: Kinds> Routes<H, M, K> {
    fn new(schema: &'static str, consumer: &str, handler: H, kind: K) -> Self {
        let mut subscription = Subscription::new(schema, consumer, "");
        for (names, subject, _) in M::catalog() {
            subject.clone_into(&mut subscription.subject);
            subscription
                .names
                .extend(names.iter().map(|name| (*name).to_owned()));
        }
        Routes {
            subscription,
            handler,
            kind,
            reset: None,
            messages: PhantomData,
        }
    }

    /// The subscription the routes make.
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// Every payload on the one subject, and commands answered only as commands.
    fn check(&self) -> anyhow::Result<()> {
        for (names, subject, kind) in M::catalog() {
            if subject != self.subscription.subject {
                anyhow::bail!(
                    "{}: {names:?} are on {subject}, not {}",
                    self.subscription.consumer,
                    self.subscription.subject
                );
            }
            if (kind == Kind::Command) != K::COMMANDS {
                anyhow::bail!(
                    "{}: {names:?} are a {kind:?}, routed as the other kind",
                    self.subscription.consumer
                );
            }
        }
        Ok(())
    }
}

/// A subscription with the handler its messages go to.
pub type Routed = (Subscription, Arc<dyn Handler>);

/// Routes ready to run.
pub trait IntoRouted {
    /// The subscription and its handler.
    ///
    /// # Errors
    /// The routes are not one consumer's: payloads on different subjects, or a command routed
    /// as an event or the other way round (a bug in the module, caught at start-up).
    fn into_routed(self) -> anyhow::Result<Routed>;
}

impl<H: On<M>, M: Messages> IntoRouted for Routes<H, M, Events> {
    fn into_routed(self) -> anyhow::Result<Routed> {
        self.check()?;
        Ok((self.subscription.clone(), Arc::new(self)))
    }
}

impl<H: Answer<M>, M: Messages> IntoRouted for Routes<H, M, Commands> {
    fn into_routed(self) -> anyhow::Result<Routed> {
        self.check()?;
        let outbox = self.kind.0.clone();
        Ok((self.subscription.clone(), Arc::new(replying(outbox, self))))
    }
}

#[async_trait]
impl<H: On<M>, M: Messages> Handler for Routes<H, M, Events> {
    async fn handle(&self, tx: &mut db::Conn, message: &Incoming) -> Result<(), HandlerError> {
        self.handler.on(tx, M::decode(message)?, message).await
    }

    async fn reset(&self, tx: &mut db::Conn, consumer: &str) -> Result<bool, HandlerError> {
        let Some(reset) = self.reset else {
            return Ok(false);
        };
        reset(&self.handler, tx, consumer).await?;
        Ok(true)
    }
}

#[async_trait]
impl<H: Answer<M>, M: Messages> CommandHandler for Routes<H, M, Commands> {
    async fn handle(&self, tx: &mut db::Conn, command: &Incoming) -> Result<Reply, CommandError> {
        self.handler.answer(tx, M::decode(command)?, command).await
    }
}

#[cfg(test)]
mod tests;
