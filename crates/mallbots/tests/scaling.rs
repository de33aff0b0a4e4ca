//! The scale-out deployment files, checked offline (issue 16): replicas, disruption budgets and
//! lag-driven autoscaling in deploy/k8s agree with each other and with the binary; the docker
//! compose file runs the monolith by default and the microservices as a profile, with every
//! variable one the binary reads and every address one that exists.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "support/manifests.rs"]
mod manifests;

use std::collections::{BTreeMap, BTreeSet};

use manifests::{ROOT, documents, env_of, named, reads};
use serde_json::Value;

fn number(value: &Value) -> i64 {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{value} is not a number"))
}

#[test]
fn every_deployment_has_replicas_and_a_disruption_budget_that_leaves_one_up() {
    let docs = documents("deploy/k8s/mallbots.yaml");
    let deployments: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Deployment").collect();
    assert_eq!(
        deployments.len(),
        mallbots::MODULES.len() + 1,
        "every module and the gateway"
    );
    for deployment in deployments {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let replicas = number(&deployment["spec"]["replicas"]);
        assert!(
            replicas >= 2,
            "{name}: one replica is an outage at every rollout"
        );
        let budget = named(&docs, "PodDisruptionBudget", name);
        assert_eq!(
            budget["spec"]["selector"]["matchLabels"],
            deployment["spec"]["selector"]["matchLabels"],
            "{name}: the budget covers its pods"
        );
        let keeps = number(&budget["spec"]["minAvailable"]);
        assert!(
            (1..replicas).contains(&keeps),
            "{name}: a drain can proceed and one stays up"
        );
        if name == "gateway" {
            continue;
        }
        let env = env_of(deployment);
        let parts = number(&env["CONSUMER_PARTITIONS"]);
        assert!(
            parts >= replicas,
            "{name}: a replica without a part would only stand by"
        );
        assert_eq!(
            env["NATS_STREAM_REPLICAS"], "3",
            "{name}: the stream survives a node"
        );
    }
    let nats = &documents("deploy/k8s/nats-values.yaml")[0];
    assert!(number(&nats["config"]["cluster"]["replicas"]) >= 3);
}

/// The durable consumer names a module's source gives its subscriptions.
fn subscriptions_of(module: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/crates/{module}/src/lib.rs")).unwrap()
}

#[test]
fn autoscaling_follows_the_lag_of_a_consumer_the_module_has() {
    let docs = documents("deploy/k8s/mallbots.yaml");
    let scaled = documents("deploy/k8s/autoscaling.yaml");
    assert!(!scaled.is_empty());
    for object in &scaled {
        assert_eq!(object["apiVersion"], "keda.sh/v1alpha1");
        assert_eq!(object["kind"], "ScaledObject");
        let target = object["spec"]["scaleTargetRef"]["name"].as_str().unwrap();
        let deployment = named(&docs, "Deployment", target);
        let env = env_of(deployment);
        let parts = number(&env["CONSUMER_PARTITIONS"]);
        let (least, most) = (
            number(&object["spec"]["minReplicaCount"]),
            number(&object["spec"]["maxReplicaCount"]),
        );
        assert!(
            least >= number(&deployment["spec"]["replicas"]),
            "{target}: never below its budget's room"
        );
        assert!(
            most <= parts,
            "{target}: more replicas than parts would stand by"
        );
        let trigger = &object["spec"]["triggers"][0];
        assert_eq!(
            trigger["type"], "nats-jetstream",
            "{target}: KEDA's JetStream scaler"
        );
        let metadata = &trigger["metadata"];
        assert_eq!(
            metadata["stream"], env["NATS_STREAM"],
            "{target}: its stream"
        );
        assert!(
            metadata["natsServerMonitoringEndpoint"]
                .as_str()
                .unwrap()
                .ends_with(":8222"),
            "{target}: NATS's monitoring port"
        );
        assert!(number(&metadata["lagThreshold"]) > 0);
        // A part's durable: <subscription>-<part>of<parts>, of a subscription the module has.
        let consumer = metadata["consumer"].as_str().unwrap();
        let (subscription, part) = consumer.rsplit_once('-').unwrap();
        assert_eq!(
            part,
            format!("0of{parts}"),
            "{target}: part 0 of CONSUMER_PARTITIONS"
        );
        assert!(
            subscriptions_of(target).contains(&format!("\"{subscription}\"")),
            "{target} has no subscription {subscription}"
        );
    }
}

#[test]
fn the_compose_file_runs_the_monolith_by_default_and_the_microservices_as_a_profile() {
    let compose = &documents("deploy/compose/compose.yaml")[0];
    let services = compose["services"].as_object().unwrap();
    let dotenv = std::fs::read_to_string(format!("{ROOT}/deploy/compose/.env")).unwrap();
    assert!(
        dotenv.lines().any(|l| l == "COMPOSE_PROFILES=monolith"),
        "plain `up` is the monolith"
    );
    let initdb = std::fs::read_to_string(format!("{ROOT}/deploy/compose/initdb.sql")).unwrap();
    let (serve, gateway_reads) = (reads("serve"), reads("gateway"));
    let profile = |service: &Value| service["profiles"][0].as_str().unwrap_or("").to_owned();
    let mut by_profile: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, service) in services {
        let env: BTreeMap<String, String> = service["environment"]
            .as_object()
            .map(|env| {
                env.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        by_profile
            .entry(profile(service))
            .or_default()
            .insert(name.clone());
        if service["image"]
            .as_str()
            .is_none_or(|image| !image.starts_with("mallbots:"))
        {
            continue;
        }
        let gateway = service["command"][0] == "gateway";
        for key in env.keys() {
            let known = if gateway { &gateway_reads } else { &serve };
            assert!(
                known.contains(key),
                "{name}: the binary does not read {key}"
            );
        }
        // Open only because it listens where nothing outside the machine reaches it.
        assert_eq!(env["AUTH"], "off", "{name}");
        for port in service["ports"].as_array().into_iter().flatten() {
            assert!(
                port.as_str().unwrap().starts_with("127.0.0.1:"),
                "{name}: published on loopback only"
            );
        }
        if let Some(conn) = env.get("PG_CONN") {
            let database = conn.rsplit_once('/').unwrap().1;
            assert!(
                initdb.contains(&format!("CREATE DATABASE {database};")),
                "{name}: {database} is created"
            );
            assert!(
                conn.contains("@postgres:"),
                "{name}: the compose PostgreSQL"
            );
        }
        if let Some(url) = env.get("NATS_URL") {
            assert_eq!(url, "nats://nats:4222", "{name}");
        }
        for (peer, address) in env
            .get("RPC_SERVICES")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
            .filter_map(|p| p.split_once('='))
        {
            let host = address.split(':').next().unwrap();
            assert_eq!(
                host,
                peer.to_lowercase(),
                "{name}: {peer} is its module's service"
            );
            assert_eq!(
                profile(&services[host]),
                profile(service),
                "{name}: {peer} runs beside it"
            );
        }
        if gateway {
            let upstreams = mallbots::gateway::parse_upstreams(&env["GATEWAY_UPSTREAMS"]).unwrap();
            for (module, urls) in &upstreams.0 {
                for url in urls {
                    assert!(
                        url.starts_with(&format!("http://{module}:8080")),
                        "gateway: {url}"
                    );
                }
                assert!(
                    services.contains_key(*module),
                    "gateway: no service {module}"
                );
            }
        }
        if let Some(module) = env.get("MODULES") {
            assert_eq!(module, name, "a module per service, named alike");
            let parts: i64 = env["CONSUMER_PARTITIONS"].parse().unwrap();
            assert!(
                parts >= number(&service["deploy"]["replicas"]),
                "{name}: a part per replica"
            );
        }
    }
    assert!(
        by_profile[""].contains("postgres") && by_profile[""].contains("nats"),
        "{by_profile:?}"
    );
    assert_eq!(
        by_profile["monolith"],
        BTreeSet::from(["mallbots".to_owned()])
    );
    let microservices: BTreeSet<String> = mallbots::MODULES
        .iter()
        .map(|m| m.name.to_owned())
        .chain(["gateway".to_owned()])
        .collect();
    assert_eq!(
        by_profile["microservices"], microservices,
        "every module and the gateway"
    );
}

#[test]
fn the_gateway_takes_a_modules_replicas() {
    let upstreams =
        mallbots::gateway::parse_upstreams("ordering=http://a:1|http://b:2,stores=http://c:3")
            .unwrap();
    assert_eq!(upstreams.0["ordering"], ["http://a:1", "http://b:2"]);
    assert_eq!(upstreams.0["stores"], ["http://c:3"]);
    assert!(mallbots::gateway::parse_upstreams("ordering=http://a:1|ftp://b").is_err());
}
