//! `notificationspb.NotificationsService`: the book's three Notify calls, now real.

use proto::notifications::{self as pb, notifications_service_server::NotificationsService};
use tonic::{Request, Response, Status};

use crate::notify::{Kind, Notifier};

pub(crate) fn server(
    db: db::Db,
    notifier: Notifier,
) -> pb::notifications_service_server::NotificationsServiceServer<Grpc> {
    pb::notifications_service_server::NotificationsServiceServer::new(Grpc { db, notifier })
}

pub(crate) struct Grpc {
    db: db::Db,
    notifier: Notifier,
}

impl Grpc {
    async fn notify(
        &self,
        kind: Kind,
        customer_id: String,
        order_id: String,
    ) -> Result<(), Status> {
        let notifier = self.notifier.clone();
        let id = uuid::Uuid::new_v4().to_string();
        self.db
            .transaction(|tx| {
                Box::pin(async move {
                    notifier
                        .notify(tx, &id, kind, &customer_id, &order_id)
                        .await
                })
            })
            .await
            .map_err(|error| Status::unavailable(error.to_string()))
    }
}

#[tonic::async_trait]
impl NotificationsService for Grpc {
    async fn notify_order_created(
        &self,
        request: Request<pb::NotifyOrderCreatedRequest>,
    ) -> Result<Response<pb::NotifyOrderCreatedResponse>, Status> {
        let r = request.into_inner();
        self.notify(Kind::OrderCreated, r.customer_id, r.order_id)
            .await?;
        Ok(Response::new(pb::NotifyOrderCreatedResponse {}))
    }

    async fn notify_order_canceled(
        &self,
        request: Request<pb::NotifyOrderCanceledRequest>,
    ) -> Result<Response<pb::NotifyOrderCanceledResponse>, Status> {
        let r = request.into_inner();
        self.notify(Kind::OrderCanceled, r.customer_id, r.order_id)
            .await?;
        Ok(Response::new(pb::NotifyOrderCanceledResponse {}))
    }

    async fn notify_order_ready(
        &self,
        request: Request<pb::NotifyOrderReadyRequest>,
    ) -> Result<Response<pb::NotifyOrderReadyResponse>, Status> {
        let r = request.into_inner();
        self.notify(Kind::OrderReady, r.customer_id, r.order_id)
            .await?;
        Ok(Response::new(pb::NotifyOrderReadyResponse {}))
    }
}
