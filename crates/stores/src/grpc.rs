//! `storespb.StoresService`: the same use cases over gRPC (other modules' cache fallbacks call
//! `GetStore` and `GetProduct` here).

use proto::stores::{
    self as pb,
    stores_service_server::{StoresService, StoresServiceServer},
};
use tonic::{Request, Response};

use crate::{
    app::{App, Error},
    catalog, mall,
};

host::grpc_service!(StoresServiceServer, App, Error);

fn store(store: mall::Store) -> pb::Store {
    pb::Store {
        id: store.id,
        name: store.name,
        location: store.location,
        participating: store.participating,
    }
}

fn product(p: catalog::Product) -> pb::Product {
    pb::Product {
        id: p.id,
        store_id: p.store_id,
        name: p.name,
        description: p.description,
        sku: p.sku,
        price: p.price,
    }
}

#[tonic::async_trait]
impl StoresService for Grpc {
    async fn create_store(
        &self,
        request: Request<pb::CreateStoreRequest>,
    ) -> Reply<pb::CreateStoreResponse> {
        // gRPC callers are the mall's own (ADR 18); the store is theirs to hand over.
        let owner = request
            .extensions()
            .get::<host::auth::Caller>()
            .map(|caller| caller.subject.clone())
            .unwrap_or_default();
        let request = request.into_inner();
        let id = self
            .0
            .create_store(owner, request.name, request.location)
            .await?;
        Ok(Response::new(pb::CreateStoreResponse { id }))
    }

    async fn enable_participation(
        &self,
        request: Request<pb::EnableParticipationRequest>,
    ) -> Reply<pb::EnableParticipationResponse> {
        self.0
            .enable_participation(&request.into_inner().id)
            .await?;
        Ok(Response::new(pb::EnableParticipationResponse {}))
    }

    async fn disable_participation(
        &self,
        request: Request<pb::DisableParticipationRequest>,
    ) -> Reply<pb::DisableParticipationResponse> {
        self.0
            .disable_participation(&request.into_inner().id)
            .await?;
        Ok(Response::new(pb::DisableParticipationResponse {}))
    }

    async fn rebrand_store(
        &self,
        request: Request<pb::RebrandStoreRequest>,
    ) -> Reply<pb::RebrandStoreResponse> {
        let request = request.into_inner();
        self.0.rebrand_store(&request.id, request.name).await?;
        Ok(Response::new(pb::RebrandStoreResponse {}))
    }

    async fn get_store(
        &self,
        request: Request<pb::GetStoreRequest>,
    ) -> Reply<pb::GetStoreResponse> {
        let found = self.0.store(&request.into_inner().id).await?;
        Ok(Response::new(pb::GetStoreResponse {
            store: Some(store(found)),
        }))
    }

    async fn get_stores(
        &self,
        _request: Request<pb::GetStoresRequest>,
    ) -> Reply<pb::GetStoresResponse> {
        let stores = self.0.stores(false).await?.into_iter().map(store).collect();
        Ok(Response::new(pb::GetStoresResponse { stores }))
    }

    async fn get_participating_stores(
        &self,
        _request: Request<pb::GetParticipatingStoresRequest>,
    ) -> Reply<pb::GetParticipatingStoresResponse> {
        let stores = self.0.stores(true).await?.into_iter().map(store).collect();
        Ok(Response::new(pb::GetParticipatingStoresResponse { stores }))
    }

    async fn add_product(
        &self,
        request: Request<pb::AddProductRequest>,
    ) -> Reply<pb::AddProductResponse> {
        let r = request.into_inner();
        let id = self
            .0
            .add_product(r.store_id, r.name, r.description, r.sku, r.price)
            .await?;
        Ok(Response::new(pb::AddProductResponse { id }))
    }

    async fn rebrand_product(
        &self,
        request: Request<pb::RebrandProductRequest>,
    ) -> Reply<pb::RebrandProductResponse> {
        let r = request.into_inner();
        self.0.rebrand_product(&r.id, r.name, r.description).await?;
        Ok(Response::new(pb::RebrandProductResponse {}))
    }

    async fn increase_product_price(
        &self,
        request: Request<pb::IncreaseProductPriceRequest>,
    ) -> Reply<pb::IncreaseProductPriceResponse> {
        let r = request.into_inner();
        self.0.increase_price(&r.id, r.price).await?;
        Ok(Response::new(pb::IncreaseProductPriceResponse {}))
    }

    async fn decrease_product_price(
        &self,
        request: Request<pb::DecreaseProductPriceRequest>,
    ) -> Reply<pb::DecreaseProductPriceResponse> {
        let r = request.into_inner();
        self.0.decrease_price(&r.id, r.price).await?;
        Ok(Response::new(pb::DecreaseProductPriceResponse {}))
    }

    async fn remove_product(
        &self,
        request: Request<pb::RemoveProductRequest>,
    ) -> Reply<pb::RemoveProductResponse> {
        self.0.remove_product(&request.into_inner().id).await?;
        Ok(Response::new(pb::RemoveProductResponse {}))
    }

    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Reply<pb::GetProductResponse> {
        let found = self.0.product(&request.into_inner().id).await?;
        Ok(Response::new(pb::GetProductResponse {
            product: Some(product(found)),
        }))
    }

    async fn get_catalog(
        &self,
        request: Request<pb::GetCatalogRequest>,
    ) -> Reply<pb::GetCatalogResponse> {
        let products = self
            .0
            .catalog(&request.into_inner().store_id)
            .await?
            .into_iter()
            .map(product)
            .collect();
        Ok(Response::new(pb::GetCatalogResponse { products }))
    }
}
