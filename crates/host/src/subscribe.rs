//! Subscriptions of the modules a process hosts: run whole on SQLite, whose files belong to one
//! process, and in parts shared with the module's other replicas on PostgreSQL (ADR 23).

use std::sync::Arc;

use crate::{Host, asyncapi};

impl Host {
    /// Consumes `subscription` with `handler` until shutdown.
    pub fn subscribe(
        &mut self,
        subscription: messaging::Subscription,
        handler: impl messaging::Handler,
    ) {
        self.consume(subscription, Arc::new(handler));
    }

    /// Consumes what `routes` route until shutdown.
    ///
    /// # Errors
    /// The routes are not one consumer's (a bug in the module, caught at start-up).
    pub fn route(&mut self, routes: impl messaging::IntoRouted) -> anyhow::Result<()> {
        let (subscription, handler) = routes.into_routed()?;
        self.consume(subscription, handler);
        Ok(())
    }

    fn consume(
        &mut self,
        subscription: messaging::Subscription,
        handler: Arc<dyn messaging::Handler>,
    ) {
        self.receivers.push(asyncapi::Receiver {
            module: subscription.schema,
            consumer: subscription.consumer.clone(),
            subject: subscription.subject.clone(),
            names: subscription.names.clone(),
        });
        let mut subscription = subscription;
        subscription.parts = self.config.consumer_partitions;
        // A module's own batch size wins: it knows what a batch of its handler costs.
        subscription.batch = subscription.batch.or(Some(self.config.consumer_batch));
        subscription.ack_wait = self.config.consumer_ack_wait;
        subscription.concurrency = self
            .config
            .consumer_concurrency
            .or(subscription.concurrency);
        let (db, broker) = (self.db.clone(), self.broker.clone());
        let module = subscription.schema;
        // SQLite files belong to one process, and an operator may say a process is its module's
        // only one: nothing to share. Otherwise PostgreSQL may be shared by replicas, which
        // then split each consumer's parts between them (ADR 23).
        if db.backend() == db::Backend::Sqlite || self.config.consumer_partitions == 0 {
            subscription.parts = 1;
            self.durables.push((module, subscription.consumer.clone()));
            self.spawn("subscription", move |stop| async move {
                messaging::subscription::run(db, broker, subscription, handler, stop).await;
                Ok(())
            });
            return;
        }
        self.durables
            .extend(subscription.durables().into_iter().map(|d| (module, d)));
        let owners = self.owners(module);
        self.spawn("subscription", move |stop| async move {
            messaging::subscription::run_shared(db, broker, subscription, handler, owners, stop)
                .await;
            Ok(())
        });
    }

    /// The owner keeper of `module`'s consumers, started with its first subscription.
    fn owners(&mut self, module: &'static str) -> messaging::Owners {
        if let Some(owners) = self.owners.get(module) {
            return owners.clone();
        }
        let owners = messaging::Owners::new(
            self.db.clone(),
            module,
            self.member.clone(),
            self.config.consumer_lease,
        );
        self.owners.insert(module, owners.clone());
        let keeper = owners.clone();
        self.spawn("consumer owners", move |stop| async move {
            keeper.keep(stop).await;
            Ok(())
        });
        owners
    }
}
