//! `searchpb.SearchService`.

use db::Db;
use proto::search::{self as pb, search_service_server::SearchService};
use tonic::{Request, Response, Status};

use crate::queries::{self, Filters, Order};

pub(crate) fn server(db: Db) -> pb::search_service_server::SearchServiceServer<Grpc> {
    pb::search_service_server::SearchServiceServer::new(Grpc(db))
}

pub(crate) struct Grpc(Db);

fn order(order: Order) -> pb::Order {
    let items = order
        .items
        .into_iter()
        .map(|i| pb::order::Item {
            product_id: i.product_id,
            store_id: i.store_id,
            product_name: i.product_name,
            store_name: i.store_name,
            price: i.price,
            quantity: i.quantity,
        })
        .collect();
    pb::Order {
        order_id: order.order_id,
        customer_id: order.customer_id,
        customer_name: order.customer_name,
        items,
        total: order.total,
        status: order.status,
    }
}

fn micros(t: Option<prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000)
}

impl From<queries::Error> for Status {
    fn from(error: queries::Error) -> Status {
        host::ApiError::from(error).into()
    }
}

#[tonic::async_trait]
impl SearchService for Grpc {
    async fn search_orders(
        &self,
        request: Request<pb::SearchOrdersRequest>,
    ) -> Result<Response<pb::SearchOrdersResponse>, Status> {
        let r = request.into_inner();
        let f = r.filters.unwrap_or_default();
        let filters = Filters {
            customer_id: f.customer_id,
            after: micros(f.after),
            before: micros(f.before),
            store_ids: f.store_ids,
            product_ids: f.product_ids,
            min_total: f.min_total,
            max_total: f.max_total,
            status: f.status,
        };
        let limit = if r.limit <= 0 { 20 } else { i64::from(r.limit) };
        let (orders, next) = queries::search(&self.0, &filters, &r.next, limit).await?;
        Ok(Response::new(pb::SearchOrdersResponse {
            orders: orders.into_iter().map(order).collect(),
            next,
        }))
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        match queries::find(&self.0, &request.into_inner().id).await? {
            Some(found) => Ok(Response::new(pb::GetOrderResponse {
                order: Some(order(found)),
            })),
            None => Err(Status::not_found("order with that ID does not exist")),
        }
    }
}
