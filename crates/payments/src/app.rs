//! The payments use cases.

use db::Db;
use host::Channel;
use messaging::{Message, Outbox};
use proto::{customers::customers_service_client::CustomersServiceClient, payments as pb};

use crate::{
    domain::{
        invoice::{self, Invoice},
        payment::{self, Payment},
    },
    repo,
};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Payment(#[from] payment::Error),
    #[error(transparent)]
    Invoice(#[from] invoice::Error),
    #[error("customer with that ID does not exist")]
    UnknownCustomer,
    #[error("customers service unavailable: {0}")]
    CustomersUnavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Error {
        Error::Unexpected(error.into())
    }
}

#[derive(Clone)]
pub(crate) struct App {
    db: Db,
    outbox: Outbox,
    customers: CustomersServiceClient<Channel>,
}

impl App {
    pub(crate) fn new(db: Db, outbox: Outbox, customers: Channel) -> App {
        App {
            db,
            outbox,
            customers: CustomersServiceClient::new(customers),
        }
    }

    #[host::traced]
    pub(crate) async fn authorize_payment(
        &self,
        customer_id: String,
        amount: f64,
    ) -> Result<String, Error> {
        let payment = Payment::authorize(uuid::Uuid::new_v4().to_string(), customer_id, amount)?;
        // Asked before the transaction opens: no connection is held across the call.
        let request = proto::customers::GetCustomerRequest {
            id: payment.customer_id.clone(),
        };
        match self.customers.clone().get_customer(request).await {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(Error::UnknownCustomer);
            }
            Err(status) => return Err(Error::CustomersUnavailable(status.message().to_owned())),
        }
        self.db
            .transaction(|tx| {
                Box::pin(async move {
                    repo::insert_payment(tx, &payment).await?;
                    Ok::<_, Error>(payment.id)
                })
            })
            .await
    }

    #[host::traced]
    pub(crate) async fn payment(&self, id: &str) -> Result<Payment, Error> {
        let mut conn = self.db.pool().acquire().await?;
        repo::payment(&mut conn, id)
            .await?
            .ok_or(Error::Payment(payment::Error::PaymentNotFound))
    }

    /// Whether payment `id` exists (the gRPC ConfirmPayment, whose request carries no amount).
    #[host::traced]
    pub(crate) async fn confirm(&self, id: &str) -> Result<(), Error> {
        let mut conn = self.db.pool().acquire().await?;
        self.confirm_payment_in(&mut conn, id, 0.0).await
    }

    /// Whether `amount` may be charged to payment `id` (the saga's ConfirmPayment).
    #[host::traced]
    pub(crate) async fn confirm_payment_in(
        &self,
        tx: &mut db::Conn,
        id: &str,
        amount: f64,
    ) -> Result<(), Error> {
        let payment = repo::payment(tx, id)
            .await?
            .ok_or(payment::Error::NotFound)?;
        Ok(payment.confirm(amount)?)
    }

    /// An invoice for a ready order (id = order id, as in the book); a repeat is a no-op.
    #[host::traced]
    pub(crate) async fn invoice_order_in(
        &self,
        tx: &mut db::Conn,
        order_id: &str,
        customer_id: &str,
        amount: f64,
    ) -> Result<(), Error> {
        let invoice = Invoice::create(
            order_id.to_owned(),
            order_id.to_owned(),
            customer_id.to_owned(),
            amount,
        )?;
        repo::insert_invoice(tx, &invoice).await?;
        Ok(())
    }

    /// Cancels the order's invoice if one is pending; nothing else to undo otherwise.
    #[host::traced]
    pub(crate) async fn cancel_order_invoice_in(
        &self,
        tx: &mut db::Conn,
        order_id: &str,
    ) -> Result<(), Error> {
        if let Some(mut invoice) = repo::lock_invoice(tx, order_id).await?
            && invoice.cancel().is_ok()
        {
            repo::update_invoice(tx, &invoice).await?;
        }
        Ok(())
    }

    #[host::traced]
    pub(crate) async fn create_invoice(
        &self,
        order_id: String,
        payment_id: String,
        amount: f64,
    ) -> Result<String, Error> {
        let mut invoice = Invoice::create(
            uuid::Uuid::new_v4().to_string(),
            order_id,
            String::new(),
            amount,
        )?;
        self.db
            .transaction(|tx| {
                Box::pin(async move {
                    // The payment's customer pays the invoice.
                    if let Some(payment) = repo::payment(tx, &payment_id).await? {
                        invoice.customer_id = payment.customer_id;
                    }
                    repo::insert_invoice(tx, &invoice).await?;
                    Ok::<_, Error>(invoice.id)
                })
            })
            .await
    }

    #[host::traced]
    pub(crate) async fn pay_invoice(&self, id: &str) -> Result<(), Error> {
        let outbox = self.outbox.clone();
        self.change_invoice(
            id,
            move |invoice| invoice.pay().map(|_| Some(paid(invoice))),
            outbox,
        )
        .await
    }

    #[host::traced]
    pub(crate) async fn cancel_invoice(&self, id: &str) -> Result<(), Error> {
        self.change_invoice(
            id,
            |invoice| invoice.cancel().map(|()| None),
            self.outbox.clone(),
        )
        .await
    }

    #[host::traced]
    pub(crate) async fn adjust_invoice(&self, id: &str, amount: f64) -> Result<(), Error> {
        self.change_invoice(
            id,
            move |invoice| invoice.adjust(amount).map(|()| None),
            self.outbox.clone(),
        )
        .await
    }

    async fn change_invoice<F>(&self, id: &str, decide: F, outbox: Outbox) -> Result<(), Error>
    where
        F: FnOnce(&mut Invoice) -> Result<Option<Message>, invoice::Error> + Send + 'static,
    {
        let id = id.to_owned();
        self.db
            .transaction(|tx| {
                Box::pin(async move {
                    let mut invoice = repo::lock_invoice(tx, &id)
                        .await?
                        .ok_or(invoice::Error::NotFound)?;
                    let message = decide(&mut invoice)?;
                    repo::update_invoice(tx, &invoice).await?;
                    outbox.stage(tx, message).await?;
                    Ok::<_, Error>(())
                })
            })
            .await
    }

    #[host::traced]
    pub(crate) async fn invoice(&self, id: &str) -> Result<Invoice, Error> {
        repo::find_invoice(&self.db, id)
            .await?
            .ok_or(Error::Invoice(invoice::Error::NotFound))
    }
}

/// `paymentsapi.InvoicePaid`.
fn paid(invoice: &Invoice) -> Message {
    let payload = pb::InvoicePaid {
        id: invoice.id.clone(),
        order_id: invoice.order_id.clone(),
    };
    Message::of(&payload).about(&invoice.id)
}
