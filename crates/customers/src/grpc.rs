//! `customerspb.CustomersService` (search and notifications look customers up here).

use proto::customers::{
    self as pb,
    customers_service_server::{CustomersService, CustomersServiceServer},
};
use tonic::{Request, Response};

use crate::app::{App, Error};

host::grpc_service!(CustomersServiceServer, App, Error);

#[tonic::async_trait]
impl CustomersService for Grpc {
    async fn register_customer(
        &self,
        request: Request<pb::RegisterCustomerRequest>,
    ) -> Reply<pb::RegisterCustomerResponse> {
        let r = request.into_inner();
        let id = self.0.register(None, r.name, r.sms_number).await?;
        Ok(Response::new(pb::RegisterCustomerResponse { id }))
    }

    async fn authorize_customer(
        &self,
        request: Request<pb::AuthorizeCustomerRequest>,
    ) -> Reply<pb::AuthorizeCustomerResponse> {
        self.0.authorized(&request.into_inner().id).await?;
        Ok(Response::new(pb::AuthorizeCustomerResponse {}))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Reply<pb::GetCustomerResponse> {
        let c = self.0.customer(&request.into_inner().id).await?;
        let customer = pb::Customer {
            id: c.id,
            name: c.name,
            sms_number: c.sms_number,
            enabled: c.enabled,
        };
        Ok(Response::new(pb::GetCustomerResponse {
            customer: Some(customer),
        }))
    }

    async fn enable_customer(
        &self,
        request: Request<pb::EnableCustomerRequest>,
    ) -> Reply<pb::EnableCustomerResponse> {
        self.0.enable(&request.into_inner().id).await?;
        Ok(Response::new(pb::EnableCustomerResponse {}))
    }

    async fn disable_customer(
        &self,
        request: Request<pb::DisableCustomerRequest>,
    ) -> Reply<pb::DisableCustomerResponse> {
        self.0.disable(&request.into_inner().id).await?;
        Ok(Response::new(pb::DisableCustomerResponse {}))
    }

    async fn change_sms_number(
        &self,
        request: Request<pb::ChangeSmsNumberRequest>,
    ) -> Reply<pb::ChangeSmsNumberResponse> {
        let r = request.into_inner();
        self.0.change_sms_number(&r.id, r.sms_number).await?;
        Ok(Response::new(pb::ChangeSmsNumberResponse {}))
    }
}
