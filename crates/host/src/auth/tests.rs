use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::http::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};

use super::*;

const SECRET: &str = "a development secret of 32+ bytes!!";

// Test-only Ed25519 keys, standing in for an OIDC provider's.
const KEY_ONE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJCUzRS8UHq1jhzn4DwLgCJT2wwL1PffMaJoJvK3Ehvx
-----END PRIVATE KEY-----";
const KEY_TWO: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIKsx9bSjWrphJKGvB41a4rtI6m3rDlkL6NYI8D2ZGpC3
-----END PRIVATE KEY-----";

fn hs256() -> AuthConfig {
    AuthConfig {
        auth_hs256_secret: Some(SECRET.into()),
        ..AuthConfig::default()
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

fn signed(claims: &serde_json::Value, key: &EncodingKey, header: &Header) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

fn in_an_hour() -> u64 {
    jsonwebtoken::get_current_timestamp() + 3600
}

#[tokio::test]
async fn a_minted_token_proves_its_subject_and_role() {
    let config = hs256();
    let auth = Auth::new(&config).unwrap();
    let minted = mint(&config, Role::Customer, "c-1", Duration::from_secs(60)).unwrap();
    let caller = auth.caller(&bearer(&minted.token)).await.unwrap();
    assert_eq!(
        caller,
        Caller {
            subject: "c-1".into(),
            role: Role::Customer
        }
    );
}

#[tokio::test]
async fn missing_expired_forged_and_foreign_tokens_are_refused() {
    let config = AuthConfig {
        auth_issuer: Some("https://id.mall".into()),
        auth_audience: Some("mallbots".into()),
        ..hs256()
    };
    let auth = Auth::new(&config).unwrap();
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let header = Header::new(Algorithm::HS256);
    let claims = |exp: u64, iss: &str, aud: &str| serde_json::json!({"sub": "c-1", "role": "customer", "exp": exp, "iss": iss, "aud": aud});
    let good = signed(
        &claims(in_an_hour(), "https://id.mall", "mallbots"),
        &key,
        &header,
    );
    assert!(auth.caller(&bearer(&good)).await.is_ok());

    assert!(matches!(
        auth.caller(&HeaderMap::new()).await,
        Err(Refused::Missing)
    ));
    let mut basic = HeaderMap::new();
    basic.insert("authorization", HeaderValue::from_static("Basic YTpi"));
    assert!(matches!(auth.caller(&basic).await, Err(Refused::Missing)));

    let expired = jsonwebtoken::get_current_timestamp() - 120;
    let refused = [
        signed(
            &claims(expired, "https://id.mall", "mallbots"),
            &key,
            &header,
        ),
        signed(
            &claims(in_an_hour(), "https://id.mall", "mallbots"),
            &EncodingKey::from_secret(b"another secret, also 32 bytes long").unwrap(),
            &header,
        ),
        signed(
            &claims(in_an_hour(), "https://evil", "mallbots"),
            &key,
            &header,
        ),
        signed(
            &claims(in_an_hour(), "https://id.mall", "other"),
            &key,
            &header,
        ),
        format!("{good}x"),
        "not.a.token".into(),
    ];
    for token in refused {
        let answer = auth.caller(&bearer(&token)).await;
        assert!(
            matches!(answer, Err(Refused::Invalid(_))),
            "{token}: {answer:?}"
        );
    }
}

#[tokio::test]
async fn the_role_comes_from_role_or_the_first_known_of_roles() {
    let auth = Auth::new(&hs256()).unwrap();
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let header = Header::new(Algorithm::HS256);
    let with = |extra: serde_json::Value| {
        let mut claims = serde_json::json!({"sub": "s", "exp": in_an_hour()});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        signed(&claims, &key, &header)
    };
    let roles = with(serde_json::json!({"roles": ["offline_access", "store-owner"]}));
    assert_eq!(
        auth.caller(&bearer(&roles)).await.unwrap().role,
        Role::StoreOwner
    );
    for none in [
        with(serde_json::json!({})),
        with(serde_json::json!({"role": "superuser"})),
    ] {
        assert!(matches!(
            auth.caller(&bearer(&none)).await,
            Err(Refused::NoRole)
        ));
    }
}

/// A JWKS endpoint whose key set the test changes, counting fetches.
struct Provider {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<Mutex<u32>>,
}

async fn provider() -> Provider {
    let keys: Arc<Mutex<Vec<Jwk>>> = Arc::default();
    let fetches: Arc<Mutex<u32>> = Arc::default();
    let (served, counted) = (keys.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (served, counted) = (served.clone(), counted.clone());
            async move {
                *counted.lock().unwrap() += 1;
                let keys = served.lock().unwrap().clone();
                axum::Json(serde_json::json!({ "keys": keys }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Provider { url, keys, fetches }
}

fn public_jwk(pem: &str, kid: &str) -> (EncodingKey, Jwk) {
    let key = EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
    jwk.common.key_id = Some(kid.into());
    (key, jwk)
}

fn eddsa(key: &EncodingKey, kid: &str, role: &str) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.into());
    signed(
        &serde_json::json!({"sub": "admin-1", "role": role, "exp": in_an_hour()}),
        key,
        &header,
    )
}

#[tokio::test]
async fn jwks_keys_are_cached_and_fetched_again_when_the_provider_rotates() {
    let provider = provider().await;
    let (one, one_public) = public_jwk(KEY_ONE, "one");
    let (two, two_public) = public_jwk(KEY_TWO, "two");
    provider.keys.lock().unwrap().push(one_public);
    let auth = Auth::new(&AuthConfig {
        auth_jwks_url: Some(provider.url.clone()),
        ..AuthConfig::default()
    })
    .unwrap();

    let first = eddsa(&one, "one", "admin");
    assert_eq!(
        auth.caller(&bearer(&first)).await.unwrap().role,
        Role::Admin
    );
    assert!(auth.caller(&bearer(&first)).await.is_ok());
    assert_eq!(*provider.fetches.lock().unwrap(), 1, "the key is cached");

    // The provider rotates: a token names a key the cache has not seen.
    *provider.keys.lock().unwrap() = vec![two_public];
    tokio::time::sleep(JWKS_MIN_INTERVAL + Duration::from_millis(100)).await;
    let second = eddsa(&two, "two", "service");
    assert_eq!(
        auth.caller(&bearer(&second)).await.unwrap().role,
        Role::Service
    );
    assert_eq!(*provider.fetches.lock().unwrap(), 2);

    // A key signed by one the provider does not publish, or under another's kid, is refused.
    let (stranger, _) = public_jwk(KEY_ONE, "one");
    let impostor = eddsa(&stranger, "two", "admin");
    assert!(matches!(
        auth.caller(&bearer(&impostor)).await,
        Err(Refused::Invalid(_))
    ));
    // An HS256 token naming a published key's kid is refused: the JWKS key is not a secret.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("two".into());
    let confused = signed(
        &serde_json::json!({"sub": "x", "role": "admin", "exp": in_an_hour()}),
        &EncodingKey::from_secret(b"whatever").unwrap(),
        &header,
    );
    assert!(matches!(
        auth.caller(&bearer(&confused)).await,
        Err(Refused::Invalid(_))
    ));
}

#[test]
fn an_open_api_stays_on_loopback_unless_said() {
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let anywhere = IpAddr::from([0, 0, 0, 0]);
    let nothing = AuthConfig::default();
    assert_eq!(nothing.resolve().unwrap(), Mode::OffLoopback);
    assert_eq!(nothing.bind_address(None, "HTTP").unwrap(), loopback);
    let refused = nothing.bind_address(Some(anywhere), "HTTP").unwrap_err();
    assert!(refused.to_string().contains("AUTH=off"), "{refused}");

    let said = AuthConfig {
        auth: Some(false),
        ..AuthConfig::default()
    };
    assert_eq!(said.bind_address(Some(anywhere), "HTTP").unwrap(), anywhere);
    assert_eq!(hs256().bind_address(None, "HTTP").unwrap(), anywhere);

    let unkeyed = AuthConfig {
        auth: Some(true),
        ..AuthConfig::default()
    };
    assert!(unkeyed.resolve().is_err());
    let short = AuthConfig {
        auth_hs256_secret: Some("short".into()),
        ..AuthConfig::default()
    };
    assert!(short.resolve().is_err());
}

#[test]
fn the_service_token_is_minted_once_and_verifies() {
    let outgoing = token::Outgoing::minted(SECRET, &hs256());
    let first = outgoing.header().unwrap();
    assert_eq!(outgoing.header().unwrap(), first, "reused while fresh");
    assert!(first.starts_with("Bearer "));
}
