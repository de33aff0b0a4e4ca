//! `depotpb.DepotService`.

use proto::depot::{
    self as pb,
    depot_service_server::{DepotService, DepotServiceServer},
};
use tonic::{Request, Response};

use crate::{
    app::{App, Error, OrderItem},
    domain::list::ShoppingList,
};

host::grpc_service!(DepotServiceServer, App, Error);

#[tonic::async_trait]
impl DepotService for Grpc {
    async fn create_shopping_list(
        &self,
        request: Request<pb::CreateShoppingListRequest>,
    ) -> Reply<pb::CreateShoppingListResponse> {
        let r = request.into_inner();
        let items = r
            .items
            .into_iter()
            .map(|i| OrderItem {
                product_id: i.product_id,
                store_id: i.store_id,
                quantity: i.quantity,
            })
            .collect();
        let id = self.0.create(r.order_id, items).await?;
        Ok(Response::new(pb::CreateShoppingListResponse { id }))
    }

    async fn cancel_shopping_list(
        &self,
        request: Request<pb::CancelShoppingListRequest>,
    ) -> Reply<pb::CancelShoppingListResponse> {
        self.0
            .change(&request.into_inner().id, ShoppingList::cancel)
            .await?;
        Ok(Response::new(pb::CancelShoppingListResponse {}))
    }

    async fn assign_shopping_list(
        &self,
        request: Request<pb::AssignShoppingListRequest>,
    ) -> Reply<pb::AssignShoppingListResponse> {
        let r = request.into_inner();
        self.0
            .change(&r.id, move |list| list.assign(r.bot_id).map(|()| None))
            .await?;
        Ok(Response::new(pb::AssignShoppingListResponse {}))
    }

    async fn complete_shopping_list(
        &self,
        request: Request<pb::CompleteShoppingListRequest>,
    ) -> Reply<pb::CompleteShoppingListResponse> {
        self.0
            .change(&request.into_inner().id, |list| list.complete().map(Some))
            .await?;
        Ok(Response::new(pb::CompleteShoppingListResponse {}))
    }
}
