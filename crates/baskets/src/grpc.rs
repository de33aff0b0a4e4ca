//! `basketspb.BasketService`.

use proto::baskets::{
    self as pb,
    basket_service_server::{BasketService, BasketServiceServer},
};
use tonic::{Request, Response};

use crate::app::{App, Error};

host::grpc_service!(BasketServiceServer, App, Error);

#[tonic::async_trait]
impl BasketService for Grpc {
    async fn start_basket(
        &self,
        request: Request<pb::StartBasketRequest>,
    ) -> Reply<pb::StartBasketResponse> {
        let id = self.0.start(request.into_inner().customer_id).await?;
        Ok(Response::new(pb::StartBasketResponse { id }))
    }

    async fn cancel_basket(
        &self,
        request: Request<pb::CancelBasketRequest>,
    ) -> Reply<pb::CancelBasketResponse> {
        self.0.cancel(&request.into_inner().id).await?;
        Ok(Response::new(pb::CancelBasketResponse {}))
    }

    async fn checkout_basket(
        &self,
        request: Request<pb::CheckoutBasketRequest>,
    ) -> Reply<pb::CheckoutBasketResponse> {
        let r = request.into_inner();
        self.0.checkout(&r.id, r.payment_id).await?;
        Ok(Response::new(pb::CheckoutBasketResponse {}))
    }

    async fn add_item(&self, request: Request<pb::AddItemRequest>) -> Reply<pb::AddItemResponse> {
        let r = request.into_inner();
        self.0.add_item(&r.id, &r.product_id, r.quantity).await?;
        Ok(Response::new(pb::AddItemResponse {}))
    }

    async fn remove_item(
        &self,
        request: Request<pb::RemoveItemRequest>,
    ) -> Reply<pb::RemoveItemResponse> {
        let r = request.into_inner();
        self.0.remove_item(&r.id, r.product_id, r.quantity).await?;
        Ok(Response::new(pb::RemoveItemResponse {}))
    }

    async fn get_basket(
        &self,
        request: Request<pb::GetBasketRequest>,
    ) -> Reply<pb::GetBasketResponse> {
        let id = request.into_inner().id;
        let basket = self.0.basket(&id).await?;
        let items = basket
            .items()
            .map(|item| pb::Item {
                store_id: item.store_id.clone(),
                product_id: item.product_id.clone(),
                store_name: item.store_name.clone(),
                product_name: item.product_name.clone(),
                product_price: item.price,
                quantity: item.quantity,
            })
            .collect();
        Ok(Response::new(pb::GetBasketResponse {
            basket: Some(pb::Basket { id, items }),
        }))
    }
}
