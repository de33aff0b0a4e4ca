use std::sync::Mutex;

use proto::{depot, ordering, stores};

use super::*;
use crate::{Message, testing::delivered};

crate::messages! {
    enum ProductEvent {
        Added(stores::ProductAdded),
        PriceChanged(stores::ProductPriceChanged),
    }
}

crate::messages! {
    #[allow(dead_code)]
    enum Mixed {
        Store(stores::StoreCreated),
        Product(stores::ProductAdded),
    }
}

/// Remembers what it was given.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

#[async_trait]
impl On<ProductEvent> for Seen {
    async fn on(
        &self,
        _: &mut db::Conn,
        event: ProductEvent,
        m: &Incoming,
    ) -> Result<(), HandlerError> {
        let seen = match event {
            ProductEvent::Added(added) => format!("added {}", added.id),
            ProductEvent::PriceChanged(changed) => format!("{} {}", m.name(), changed.delta),
        };
        self.0.lock().unwrap().push(seen);
        Ok(())
    }
}

#[async_trait]
impl On<Mixed> for Seen {
    async fn on(&self, _: &mut db::Conn, _: Mixed, _: &Incoming) -> Result<(), HandlerError> {
        Ok(())
    }
}

#[async_trait]
impl On<depot::CreateShoppingList> for Seen {
    async fn on(
        &self,
        _: &mut db::Conn,
        _: depot::CreateShoppingList,
        _: &Incoming,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

#[async_trait]
impl Answer<ordering::ApproveOrder> for Seen {
    async fn answer(
        &self,
        _: &mut db::Conn,
        c: ordering::ApproveOrder,
        _: &Incoming,
    ) -> Result<Reply, CommandError> {
        self.0.lock().unwrap().push(format!("approve {}", c.id));
        Ok(Reply::success())
    }
}

#[async_trait]
impl Reset for Seen {
    async fn reset(&self, _: &mut db::Conn, consumer: &str) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(format!("reset {consumer}"));
        Ok(())
    }
}

#[test]
fn the_subscription_comes_from_the_payloads() {
    let routes = events::<ProductEvent, _>("shop", "shop-products", Seen::default());
    let subscription = routes.subscription();
    assert_eq!(subscription.subject, stores::PRODUCT_AGGREGATE_CHANNEL);
    assert_eq!(
        subscription.names,
        [
            stores::PRODUCT_ADDED_EVENT,
            stores::PRODUCT_PRICE_INCREASED_EVENT,
            stores::PRODUCT_PRICE_DECREASED_EVENT,
        ]
    );
    assert!(ProductEvent::takes(stores::PRODUCT_PRICE_DECREASED_EVENT));
    assert!(!ProductEvent::takes(stores::STORE_CREATED_EVENT));
    assert!(routes.into_routed().is_ok());
}

#[test]
fn routes_of_one_consumer_are_on_one_subject_and_of_one_kind() {
    let mixed = events::<Mixed, _>("shop", "shop-mixed", Seen::default());
    let error = mixed.into_routed().err().unwrap().to_string();
    assert!(error.contains("shop-mixed"), "{error}");
    let command_as_event =
        events::<depot::CreateShoppingList, _>("shop", "shop-c", Seen::default());
    assert!(command_as_event.into_routed().is_err());
}

#[tokio::test]
async fn each_message_reaches_its_variant_and_a_stranger_is_refused() {
    let db = db::testing::fresh(db::Backend::Sqlite, &["shop"]).await;
    let mut conn = db.db.pool().acquire().await.unwrap();
    let routes = events::<ProductEvent, _>("shop", "shop-products", Seen::default()).rewindable();
    let added = stores::ProductAdded {
        id: "p1".into(),
        ..Default::default()
    };
    let cheaper = stores::ProductPriceChanged {
        id: "p1".into(),
        delta: -2.0,
    };
    for message in [Message::of(&added), Message::of(&cheaper)] {
        routes.handle(&mut conn, &delivered(message)).await.unwrap();
    }
    let stranger = Message::of(&stores::StoreCreated::default());
    let refused = routes.handle(&mut conn, &delivered(stranger)).await;
    assert!(matches!(refused, Err(HandlerError::Permanent(_))));
    assert!(routes.reset(&mut conn, "shop-products").await.unwrap());
    let seen = routes.handler.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "added p1",
            "storesapi.ProductPriceDecreased -2",
            "reset shop-products"
        ]
    );
}

#[tokio::test]
async fn a_consumer_not_declared_rewindable_is_not_reset() {
    let db = db::testing::fresh(db::Backend::Sqlite, &["shop"]).await;
    let mut conn = db.db.pool().acquire().await.unwrap();
    let routes = events::<ProductEvent, _>("shop", "shop-products", Seen::default());
    assert!(!routes.reset(&mut conn, "shop-products").await.unwrap());
}

#[tokio::test]
async fn a_command_is_answered_by_its_answer() {
    let db = db::testing::fresh(db::Backend::Sqlite, &["shop"]).await;
    let mut conn = db.db.pool().acquire().await.unwrap();
    let routes = commands::<ordering::ApproveOrder, _>(
        "shop",
        "shop-commands",
        Outbox::new("shop"),
        Seen::default(),
    );
    assert_eq!(routes.subscription().subject, ordering::COMMAND_CHANNEL);
    let approve = Message::of(&ordering::ApproveOrder {
        id: "o1".into(),
        shopping_id: "s1".into(),
    });
    let reply = CommandHandler::handle(&routes, &mut conn, &delivered(approve))
        .await
        .unwrap();
    assert_eq!(reply, Reply::success());
    assert_eq!(routes.handler.0.lock().unwrap().as_slice(), ["approve o1"]);
}
