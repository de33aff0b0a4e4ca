//! An OIDC provider's signing keys, cached by key id and fetched again when a token names a
//! key the cache does not know (the provider rotated) or the cache grew old.

use std::{collections::HashMap, time::Instant};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, Jwk, JwkSet},
};
use tokio::sync::Mutex;

use super::{JWKS_MAX_AGE, JWKS_MIN_INTERVAL, Refused};

type Key = (DecodingKey, Vec<Algorithm>);

pub(super) struct Jwks {
    url: String,
    http: reqwest::Client,
    /// The keys and when they were fetched; the lock also makes concurrent misses fetch once.
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Key>,
    fetched: Option<Instant>,
}

impl Jwks {
    pub(super) fn new(url: &str) -> anyhow::Result<Jwks> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Jwks {
            url: url.to_owned(),
            http,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The key `kid` and the algorithms it may verify.
    pub(super) async fn key(&self, kid: &str) -> Result<Key, Refused> {
        let mut cache = self.cache.lock().await;
        let age = cache.fetched.map(|at| at.elapsed());
        let stale = age.is_none_or(|age| age > JWKS_MAX_AGE);
        let may_refetch = age.is_none_or(|age| age > JWKS_MIN_INTERVAL);
        if stale || (!cache.keys.contains_key(kid) && may_refetch) {
            match self.fetch().await {
                Ok(keys) => {
                    *cache = Cache {
                        keys,
                        fetched: Some(Instant::now()),
                    };
                }
                // The keys known so far stay usable while the provider cannot be reached.
                Err(error) => {
                    tracing::warn!(url = %self.url, error = format!("{error:#}"), "cannot fetch the JWKS")
                }
            }
        }
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| Refused::Invalid(format!("unknown key {kid:?}")))
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, Key>> {
        let set: JwkSet = self
            .http
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, usable(jwk)?)))
            .collect())
    }
}

/// A signing key and its algorithms; symmetric keys and unknown types are ignored (a JWKS
/// publishes public keys: accepting an HMAC key from it would let anyone who read the
/// document sign).
fn usable(jwk: &Jwk) -> Option<Key> {
    use jsonwebtoken::AlgorithmFamily as F;
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => F::Rsa,
        AlgorithmParameters::EllipticCurve(_) => F::Ec,
        AlgorithmParameters::OctetKeyPair(_) => F::Ed,
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        Some(declared) => {
            let algorithm = Algorithm::try_from(declared).ok()?;
            (algorithm.family() == family).then(|| vec![algorithm])?
        }
        None => family.algorithms().to_vec(),
    };
    Some((DecodingKey::from_jwk(jwk).ok()?, algorithms))
}
