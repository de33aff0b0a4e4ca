//! gRPC clients of other modules: where they are (`RPC_SERVICES`, or this process), and a
//! channel to them.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use anyhow::Context as _;
use tonic::transport::{Endpoint, channel::Change};

use crate::{Channel, Host, observe};

/// How often the addresses of a balanced channel are tried.
const PROBE_EVERY: Duration = Duration::from_millis(500);

impl Host {
    /// Where to reach the gRPC service `name` (`RPC_SERVICES`), or this process itself.
    pub fn service_address(&self, name: &str) -> String {
        match self.config.rpc_services.0.get(&name.to_uppercase()) {
            Some(address) => address.clone(),
            None => {
                let own = self.grpc_addr();
                let ip = match own.ip() {
                    IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ip => ip,
                };
                SocketAddr::new(ip, own.port()).to_string()
            }
        }
    }

    /// A lazily connected gRPC channel to `name` (see [`Host::service_address`]), shared by
    /// every call through it; each call carries the caller's trace context and, with auth on,
    /// this process's `service` token.
    ///
    /// # Errors
    /// The configured address is not a valid URI.
    /// Several addresses (`PAYMENTS=10.0.0.1:9003|10.0.0.2:9003`, replicas without a load
    /// balancer in front) share the calls, and an address that stops taking connections is
    /// left out until it takes them again.
    pub fn channel(&self, name: &str) -> anyhow::Result<Channel> {
        let addresses = self.service_address(name);
        let endpoints = addresses
            .split('|')
            .map(|address| {
                Ok(
                    tonic::transport::Endpoint::from_shared(format!("http://{address}"))
                        .with_context(|| {
                            format!("invalid address {address:?} for gRPC service {name}")
                        })?
                        .connect_timeout(Duration::from_secs(2))
                        .timeout(Duration::from_secs(5)),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let channel = match <[_; 1]>::try_from(endpoints) {
            Ok([endpoint]) => endpoint.connect_lazy(),
            Err(endpoints) => balanced(endpoints),
        };
        Ok(observe::traced(channel, self.auth.outgoing()))
    }
}

/// A channel over `endpoints` that leaves out those not taking TCP connections, tried every
/// [`PROBE_EVERY`] (a replica killed is out within that; one back, in again).
fn balanced(endpoints: Vec<Endpoint>) -> tonic::transport::Channel {
    let (channel, changes) = tonic::transport::Channel::balance_channel(endpoints.len().max(1));
    tokio::spawn(async move {
        let mut up = vec![false; endpoints.len()];
        loop {
            for (i, endpoint) in endpoints.iter().enumerate() {
                let uri = endpoint.uri();
                let address = format!(
                    "{}:{}",
                    uri.host().unwrap_or_default(),
                    uri.port_u16().unwrap_or(80)
                );
                let answers = matches!(
                    tokio::time::timeout(PROBE_EVERY, tokio::net::TcpStream::connect(&address))
                        .await,
                    Ok(Ok(_))
                );
                let change = match (up[i], answers) {
                    (false, true) => Change::Insert(i, endpoint.clone()),
                    (true, false) => Change::Remove(i),
                    _ => continue,
                };
                up[i] = answers;
                tracing::info!(%address, up = answers, "gRPC replica");
                if changes.send(change).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    });
    channel
}
