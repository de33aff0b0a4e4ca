//! `orderingpb.OrderingService`.

use proto::ordering::{
    self as pb,
    ordering_service_server::{OrderingService, OrderingServiceServer},
};
use tonic::{Request, Response};

use crate::{
    app::{App, Error},
    domain::order::{Command, Item},
};

host::grpc_service!(OrderingServiceServer, App, Error);

#[tonic::async_trait]
impl OrderingService for Grpc {
    async fn create_order(
        &self,
        request: Request<pb::CreateOrderRequest>,
    ) -> Reply<pb::CreateOrderResponse> {
        let r = request.into_inner();
        let items = r
            .items
            .into_iter()
            .map(|i| Item {
                product_id: i.product_id,
                store_id: i.store_id,
                store_name: i.store_name,
                product_name: i.product_name,
                price: i.price,
                quantity: i.quantity,
            })
            .collect();
        let id = self.0.create(r.customer_id, r.payment_id, items).await?;
        Ok(Response::new(pb::CreateOrderResponse { id }))
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Reply<pb::GetOrderResponse> {
        let id = request.into_inner().id;
        let order = self.0.order(&id).await?;
        let items = order
            .items
            .iter()
            .map(|i| pb::Item {
                store_id: i.store_id.clone(),
                product_id: i.product_id.clone(),
                store_name: i.store_name.clone(),
                product_name: i.product_name.clone(),
                price: i.price,
                quantity: i.quantity,
            })
            .collect();
        let order = pb::Order {
            id,
            customer_id: order.customer_id.clone(),
            payment_id: order.payment_id.clone(),
            items,
            status: order.status.as_str().to_owned(),
            shopping_id: order.shopping_id.clone(),
            invoice_id: order.invoice_id.clone(),
        };
        Ok(Response::new(pb::GetOrderResponse { order: Some(order) }))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Reply<pb::CancelOrderResponse> {
        self.0
            .execute(&request.into_inner().id, Command::Cancel)
            .await?;
        Ok(Response::new(pb::CancelOrderResponse {}))
    }

    async fn ready_order(
        &self,
        request: Request<pb::ReadyOrderRequest>,
    ) -> Reply<pb::ReadyOrderResponse> {
        self.0
            .execute(&request.into_inner().id, Command::Ready)
            .await?;
        Ok(Response::new(pb::ReadyOrderResponse {}))
    }

    async fn complete_order(
        &self,
        request: Request<pb::CompleteOrderRequest>,
    ) -> Reply<pb::CompleteOrderResponse> {
        let r = request.into_inner();
        self.0
            .execute(
                &r.id,
                Command::Complete {
                    invoice_id: r.invoice_id,
                },
            )
            .await?;
        Ok(Response::new(pb::CompleteOrderResponse {}))
    }
}
