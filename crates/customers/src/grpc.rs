//! `customerspb.CustomersService` (search and notifications look customers up here).

use proto::customers::{self as pb, customers_service_server::CustomersService};
use tonic::{Request, Response, Status};

use crate::app::{App, Error};

pub(crate) fn server(
    app: App,
    db: db::Db,
) -> pb::customers_service_server::CustomersServiceServer<Grpc> {
    pb::customers_service_server::CustomersServiceServer::new(Grpc { app, db })
}

pub(crate) struct Grpc {
    app: App,
    db: db::Db,
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        host::ApiError::from(error).into()
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl CustomersService for Grpc {
    async fn register_customer(
        &self,
        request: Request<pb::RegisterCustomerRequest>,
    ) -> Reply<pb::RegisterCustomerResponse> {
        let r = request.into_inner();
        let id = self.app.register(r.name, r.sms_number).await?;
        Ok(Response::new(pb::RegisterCustomerResponse { id }))
    }

    async fn authorize_customer(
        &self,
        request: Request<pb::AuthorizeCustomerRequest>,
    ) -> Reply<pb::AuthorizeCustomerResponse> {
        let id = request.into_inner().id;
        let authorized = async {
            let mut conn = self
                .db
                .pool()
                .acquire()
                .await
                .map_err(|e| Error::Unexpected(e.into()))?;
            App::authorize(&mut conn, &id).await
        };
        authorized.await?;
        Ok(Response::new(pb::AuthorizeCustomerResponse {}))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Reply<pb::GetCustomerResponse> {
        let c = self.app.customer(&request.into_inner().id).await?;
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
        self.app.enable(&request.into_inner().id).await?;
        Ok(Response::new(pb::EnableCustomerResponse {}))
    }

    async fn disable_customer(
        &self,
        request: Request<pb::DisableCustomerRequest>,
    ) -> Reply<pb::DisableCustomerResponse> {
        self.app.disable(&request.into_inner().id).await?;
        Ok(Response::new(pb::DisableCustomerResponse {}))
    }

    async fn change_sms_number(
        &self,
        request: Request<pb::ChangeSmsNumberRequest>,
    ) -> Reply<pb::ChangeSmsNumberResponse> {
        let r = request.into_inner();
        self.app.change_sms_number(&r.id, r.sms_number).await?;
        Ok(Response::new(pb::ChangeSmsNumberResponse {}))
    }
}
