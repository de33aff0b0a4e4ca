//! The pact files under `pacts/` and their verification.
//!
//! A consumer test writes its pact into a scratch directory and compares it with the committed
//! file: a consumer whose expectations changed fails until the file is regenerated
//! (`UPDATE_PACTS=1`), so the provider side always verifies what is reviewed in the repository,
//! and the two sides can run in parallel.

use std::collections::HashMap;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use pact_verifier::{
    FilterInfo, NullRequestFilterExecutor, PactSource, ProviderInfo, ProviderTransport,
    VerificationOptions, callback_executors::ProviderStateExecutor,
    verification_result::VerificationMismatchResult, verify_provider_async,
};
use serde_json::Value;

/// Where the committed pacts live.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pacts")
}

/// What every pact test does first: install the TLS provider Pact's HTTP clients need, and
/// check that Pact will not report usage to its analytics service (this machine has no
/// internet and our users may not want it; `.cargo/config.toml` sets `PACT_DO_NOT_TRACK`).
///
/// # Panics
/// When `PACT_DO_NOT_TRACK` is not `true`.
pub fn prepare() {
    host::install_crypto_provider();
    assert_eq!(
        std::env::var("PACT_DO_NOT_TRACK").as_deref(),
        Ok("true"),
        "PACT_DO_NOT_TRACK=true must be set (see .cargo/config.toml)"
    );
}

/// A pact without what changes on every write (library versions), interactions in a stable
/// order.
fn comparable(pact: &Value) -> Value {
    let mut pact = pact.clone();
    if let Some(object) = pact.as_object_mut() {
        object.remove("metadata");
    }
    for list in ["interactions", "messages"] {
        if let Some(interactions) = pact.get_mut(list).and_then(Value::as_array_mut) {
            interactions.sort_by_key(|i| i["description"].as_str().unwrap_or_default().to_owned());
        }
    }
    pact
}

fn read(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Compares the pact `file` a consumer test wrote into `scratch` with the committed one;
/// with `UPDATE_PACTS=1`, replaces the committed one instead.
///
/// # Panics
/// When the consumer wrote nothing, or something other than what is committed.
pub fn check(scratch: &Path, file: &str) {
    let written_path = scratch.join(file);
    let written = read(&written_path)
        .unwrap_or_else(|| panic!("the consumer test wrote no pact {}", written_path.display()));
    let committed_path = dir().join(file);
    if std::env::var("UPDATE_PACTS").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(&written).expect("a pact serializes") + "\n";
        std::fs::write(&committed_path, text).expect("pacts/ is writable");
        return;
    }
    let committed = read(&committed_path).unwrap_or_default();
    assert!(
        comparable(&committed) == comparable(&written),
        "pacts/{file} is not what the consumer test expects now; review the change and run \
         `UPDATE_PACTS=1 cargo test -p contracts` to rewrite it.\nconsumer now expects:\n{}",
        serde_json::to_string_pretty(&comparable(&written)).unwrap_or_default()
    );
}

/// The provider `name` serving HTTP on loopback `http_port` and, for message pacts, the
/// message endpoint on `message_port`.
pub fn provider(name: &str, http_port: Option<u16>, message_port: Option<u16>) -> ProviderInfo {
    let transport = |transport: &str, port| ProviderTransport {
        transport: transport.to_owned(),
        port: Some(port),
        path: None,
        scheme: Some("http".to_owned()),
    };
    let mut transports = Vec::new();
    transports.extend(http_port.map(|port| transport("http", port)));
    transports.extend(message_port.map(|port| transport("message", port)));
    ProviderInfo {
        name: name.to_owned(),
        host: "127.0.0.1".to_owned(),
        transports,
        ..ProviderInfo::default()
    }
}

/// Verifies `provider` against the committed pacts `files`, setting up provider states with
/// `states`.
///
/// # Panics
/// When an interaction fails: the message names each interaction and what did not match.
pub async fn verify<S: ProviderStateExecutor + Send + Sync + 'static>(
    provider: ProviderInfo,
    files: &[&str],
    states: Arc<S>,
) {
    verify_with(provider, files, states, HashMap::new()).await;
}

/// [`verify`], every request of the pacts also carrying `headers` (a bearer token for a mall
/// that requires one: the pacts stay the book's, the credentials are the deployment's).
///
/// # Panics
/// When an interaction fails: the message names each interaction and what did not match.
pub async fn verify_with<S: ProviderStateExecutor + Send + Sync + 'static>(
    provider: ProviderInfo,
    files: &[&str],
    states: Arc<S>,
    headers: HashMap<String, String>,
) {
    prepare();
    let sources = files
        .iter()
        .map(|file| PactSource::File(dir().join(file).to_string_lossy().into_owned()))
        .collect();
    let options = VerificationOptions::<NullRequestFilterExecutor> {
        coloured_output: false,
        no_pacts_is_error: true,
        request_timeout: 20_000,
        custom_headers: headers,
        ..VerificationOptions::default()
    };
    let name = provider.name.clone();
    let result = verify_provider_async(
        provider,
        sources,
        FilterInfo::None,
        Vec::new(),
        &options,
        None,
        &states,
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("verifying {name} could not run: {e:#}"));
    let mut report = Vec::new();
    for (interaction, failure) in &result.errors {
        match failure {
            VerificationMismatchResult::Mismatches { mismatches, .. } => {
                for mismatch in mismatches {
                    report.push(format!("  {interaction}: {}", mismatch.description()));
                }
            }
            VerificationMismatchResult::Error { error, .. } => {
                report.push(format!("  {interaction}: {error}"));
            }
        }
    }
    assert!(
        result.result && report.is_empty(),
        "{name} breaks its consumers' pacts ({files:?}):\n{}\n\nverifier output:\n{}",
        report.join("\n"),
        result.output.join("\n")
    );
    assert!(
        !result.interaction_results.is_empty(),
        "no interaction of {files:?} was verified"
    );
}
