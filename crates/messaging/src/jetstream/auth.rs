//! Who a process is to NATS, and which server certificates it trusts.

use crate::broker::BrokerError;

/// Who this process is to NATS and how it trusts the server: at most one of a credentials file
/// (JWT + nkey seed, `NATS_CREDS`), an nkey seed (`NATS_NKEY`) or a user and password; a CA for
/// the server's certificate (`NATS_CA`, which also requires TLS) and a client certificate.
#[derive(Debug, Clone, Default)]
pub struct NatsAuth {
    /// A `.creds` file.
    pub creds: Option<std::path::PathBuf>,
    /// An nkey seed (`SU…`).
    pub nkey: Option<String>,
    /// User and password.
    pub user: Option<(String, String)>,
    /// The CA that signed the server's certificate.
    pub ca: Option<std::path::PathBuf>,
    /// A client certificate and its key, for servers that verify clients.
    pub client_certificate: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl NatsAuth {
    pub(super) async fn options(&self) -> Result<async_nats::ConnectOptions, BrokerError> {
        let mut options = async_nats::ConnectOptions::new();
        let sources = usize::from(self.creds.is_some())
            + usize::from(self.nkey.is_some())
            + usize::from(self.user.is_some());
        if sources > 1 {
            return Err(BrokerError::Nats(
                "set one of NATS_CREDS, NATS_NKEY or NATS_USER/NATS_PASSWORD".into(),
            ));
        }
        if let Some(path) = &self.creds {
            options = options.credentials_file(path).await.map_err(|e| {
                BrokerError::Nats(format!("reading NATS_CREDS {}: {e}", path.display()))
            })?;
        }
        if let Some(seed) = &self.nkey {
            options = options.nkey(seed.clone());
        }
        if let Some((user, password)) = &self.user {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(ca) = &self.ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.client_certificate {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options)
    }
}
