//! `paymentspb.PaymentsService`.

use proto::payments::{
    self as pb,
    payments_service_server::{PaymentsService, PaymentsServiceServer},
};
use tonic::{Request, Response};

use crate::app::{App, Error};

host::grpc_service!(PaymentsServiceServer, App, Error);

#[tonic::async_trait]
impl PaymentsService for Grpc {
    async fn authorize_payment(
        &self,
        request: Request<pb::AuthorizePaymentRequest>,
    ) -> Reply<pb::AuthorizePaymentResponse> {
        let r = request.into_inner();
        let id = self.0.authorize_payment(r.customer_id, r.amount).await?;
        Ok(Response::new(pb::AuthorizePaymentResponse { id }))
    }

    async fn confirm_payment(
        &self,
        request: Request<pb::ConfirmPaymentRequest>,
    ) -> Reply<pb::ConfirmPaymentResponse> {
        self.0.confirm(&request.into_inner().id).await?;
        Ok(Response::new(pb::ConfirmPaymentResponse {}))
    }

    async fn create_invoice(
        &self,
        request: Request<pb::CreateInvoiceRequest>,
    ) -> Reply<pb::CreateInvoiceResponse> {
        let r = request.into_inner();
        let id = self
            .0
            .create_invoice(r.order_id, r.payment_id, r.amount)
            .await?;
        Ok(Response::new(pb::CreateInvoiceResponse { id }))
    }

    async fn adjust_invoice(
        &self,
        request: Request<pb::AdjustInvoiceRequest>,
    ) -> Reply<pb::AdjustInvoiceResponse> {
        let r = request.into_inner();
        self.0.adjust_invoice(&r.id, r.amount).await?;
        Ok(Response::new(pb::AdjustInvoiceResponse {}))
    }

    async fn pay_invoice(
        &self,
        request: Request<pb::PayInvoiceRequest>,
    ) -> Reply<pb::PayInvoiceResponse> {
        self.0.pay_invoice(&request.into_inner().id).await?;
        Ok(Response::new(pb::PayInvoiceResponse {}))
    }

    async fn get_payment(
        &self,
        request: Request<pb::GetPaymentRequest>,
    ) -> Reply<pb::GetPaymentResponse> {
        let payment = self.0.payment(&request.into_inner().id).await?;
        let payment = pb::Payment {
            id: payment.id,
            customer_id: payment.customer_id,
            amount: payment.amount,
        };
        Ok(Response::new(pb::GetPaymentResponse {
            payment: Some(payment),
        }))
    }

    async fn cancel_invoice(
        &self,
        request: Request<pb::CancelInvoiceRequest>,
    ) -> Reply<pb::CancelInvoiceResponse> {
        self.0.cancel_invoice(&request.into_inner().id).await?;
        Ok(Response::new(pb::CancelInvoiceResponse {}))
    }
}
