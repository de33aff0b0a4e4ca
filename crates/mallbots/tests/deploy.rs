//! The deployment files cannot be applied here; what can be checked offline is: they parse,
//! every module has its Deployment and Service, every environment variable they set is one
//! the binary reads (and the ones that pick PostgreSQL, NATS and the peers are set), and the
//! ports, probes, peers and gateway routes agree with each other.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, BTreeSet};

use clap::CommandFactory as _;
use manifests::{ROOT, documents, env_of, named, reads};
use serde_json::Value;

#[path = "support/manifests.rs"]
mod manifests;

fn port(container: &Value, name: &str) -> i64 {
    container["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["name"] == name))
        .and_then(|p| p["containerPort"].as_i64())
        .unwrap_or_else(|| panic!("no {name} port"))
}

/// `NAME=host:port` or `name=http://host:port` pairs.
fn pairs(list: &str) -> Vec<(String, String, i64)> {
    list.split(',')
        .map(|entry| {
            let (name, address) = entry.split_once('=').expect("name=address");
            let address = address.trim_start_matches("http://");
            let (host, port) = address.rsplit_once(':').expect("host:port");
            (
                name.to_owned(),
                host.to_owned(),
                port.parse().expect("a port"),
            )
        })
        .collect()
}

#[test]
fn the_kubernetes_manifests_fit_the_binary() {
    let docs = documents("deploy/k8s/mallbots.yaml");
    let serve = reads("serve");
    let gateway_reads = reads("gateway");
    let service_port = |name: &str, port_name: &str| {
        named(&docs, "Service", name)["spec"]["ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["name"] == port_name))
            .and_then(|p| p["port"].as_i64())
            .unwrap_or_else(|| panic!("service {name} has no {port_name} port"))
    };
    for module in mallbots::MODULES {
        let deployment = named(&docs, "Deployment", module.name);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let env = env_of(deployment);
        for name in env.keys() {
            assert!(
                serve.contains(name),
                "{}: the binary does not read {name}",
                module.name
            );
        }
        for required in [
            "MODULES",
            "PG_CONN",
            "NATS_URL",
            "RPC_SERVICES",
            // Without a key source the pod would serve on loopback only (ADR 18).
            "AUTH_HS256_SECRET",
        ] {
            assert!(
                env.contains_key(required),
                "{}: {required} unset (would fall back to embedded)",
                module.name
            );
        }
        assert_eq!(env["MODULES"], module.name);
        assert_eq!(
            env["PG_CONN"]["secretKeyRef"]["key"], module.name,
            "its own database"
        );
        assert_eq!(
            Some(port(container, "http")),
            env["WEB_PORT"].as_str().and_then(|p| p.parse().ok())
        );
        assert_eq!(
            Some(port(container, "grpc")),
            env["RPC_PORT"].as_str().and_then(|p| p.parse().ok())
        );
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/liveness");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readiness");
        assert!(
            container["resources"]["requests"]["memory"].is_string(),
            "{}: no memory request",
            module.name
        );
        let service = named(&docs, "Service", module.name);
        assert_eq!(
            service["spec"]["selector"],
            deployment["spec"]["selector"]["matchLabels"]
        );
        for (peer, host, peer_port) in pairs(env["RPC_SERVICES"].as_str().expect("a string")) {
            assert_eq!(
                host,
                peer.to_lowercase(),
                "{peer} is the Service of its module"
            );
            assert_eq!(peer_port, service_port(&host, "grpc"), "{peer}'s gRPC port");
        }
    }
    let gateway = named(&docs, "Deployment", "gateway");
    assert_eq!(
        gateway["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "gateway"
    );
    let env = env_of(gateway);
    assert!(
        env.contains_key("AUTH_HS256_SECRET"),
        "gateway: no key source, it would serve on loopback only"
    );
    for name in env.keys() {
        assert!(
            gateway_reads.contains(name),
            "gateway: the binary does not read {name}"
        );
    }
    let routes = pairs(
        env["GATEWAY_UPSTREAMS"]
            .as_str()
            .expect("upstreams are set"),
    );
    let routed: BTreeSet<&str> = routes.iter().map(|(m, ..)| m.as_str()).collect();
    let modules: BTreeSet<&str> = mallbots::MODULES.iter().map(|m| m.name).collect();
    assert_eq!(routed, modules, "the gateway routes every module");
    for (module, host, port) in &routes {
        assert_eq!(host, module);
        assert_eq!(*port, service_port(host, "http"));
    }
    assert!(
        mallbots::gateway::parse_upstreams(env["GATEWAY_UPSTREAMS"].as_str().unwrap_or_default())
            .is_ok()
    );

    let secret = &documents("deploy/k8s/postgres-secret.example.yaml")[0];
    for module in &modules {
        assert!(
            secret["stringData"][module].is_string(),
            "the secret has no {module} database"
        );
    }
    let nats = &documents("deploy/k8s/nats-values.yaml")[0];
    assert_eq!(nats["config"]["cluster"]["replicas"], 3);
    assert_eq!(nats["config"]["jetstream"]["enabled"], true);
}

#[test]
fn the_image_is_multi_stage_non_root_and_exposes_the_default_ports() {
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).expect("a Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("FROM ")).count(),
        2,
        "build and runtime stages"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("USER nonroot")),
        "runs as non-root"
    );
    assert!(lines.contains(&"EXPOSE 8080 9000"));
    let defaults = mallbots::Cli::command();
    let default_of = |id: &str| {
        defaults
            .get_arguments()
            .find(|a| a.get_id() == id)
            .and_then(|a| {
                a.get_default_values()
                    .first()
                    .map(|v| v.to_string_lossy().into_owned())
            })
    };
    assert_eq!(default_of("web_port").as_deref(), Some("8080"));
    assert_eq!(default_of("rpc_port").as_deref(), Some("9000"));
}

#[test]
fn prometheus_scrapes_every_pod_where_it_serves_metrics_and_the_collector_takes_otlp() {
    let prometheus = &documents("deploy/prometheus/prometheus.yml")[0];
    let jobs = prometheus["scrape_configs"]
        .as_array()
        .expect("scrape jobs");
    assert!(!jobs.is_empty());
    for job in jobs {
        assert_eq!(job["metrics_path"], "/metrics", "{job}");
    }
    // The Kubernetes job keeps the pods of deploy/k8s by their labels, on the port they name.
    let k8s = jobs
        .iter()
        .find(|job| job["kubernetes_sd_configs"].is_array())
        .expect("a job for deploy/k8s");
    let keeps: BTreeMap<String, String> = k8s["relabel_configs"]
        .as_array()
        .expect("relabelling")
        .iter()
        .filter(|rule| rule["action"] == "keep")
        .map(|rule| {
            (
                rule["source_labels"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                rule["regex"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let docs = documents("deploy/k8s/mallbots.yaml");
    for module in mallbots::MODULES {
        let pod = &named(&docs, "Deployment", module.name)["spec"]["template"];
        let label = &pod["metadata"]["labels"]["app.kubernetes.io/part-of"];
        assert_eq!(
            label.as_str(),
            keeps
                .get("__meta_kubernetes_pod_label_app_kubernetes_io_part_of")
                .map(String::as_str),
            "{} is not scraped",
            module.name
        );
        let scraped = keeps
            .get("__meta_kubernetes_pod_container_port_name")
            .expect("a port to scrape");
        // /metrics is served on the HTTP port (WEB_PORT).
        let container = &pod["spec"]["containers"][0];
        assert_eq!(port(container, scraped), port(container, "http"));
    }

    let collector = &documents("deploy/otel/collector.yaml")[0];
    let grpc = &collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"];
    assert!(
        grpc.as_str().is_some_and(|e| e.ends_with(":4317")),
        "{grpc}"
    );
    let traces = &collector["service"]["pipelines"]["traces"];
    assert!(
        traces["receivers"]
            .as_array()
            .is_some_and(|r| r.contains(&"otlp".into()))
    );
    for exporter in traces["exporters"].as_array().expect("exporters") {
        let exporter = exporter.as_str().unwrap_or_default();
        assert!(
            collector["exporters"][exporter].is_object(),
            "{exporter} is not configured"
        );
    }
    for processor in traces["processors"].as_array().expect("processors") {
        let processor = processor.as_str().unwrap_or_default();
        assert!(
            collector["processors"][processor].is_object(),
            "{processor} is not configured"
        );
    }
}

/// The publish rights of each identity in `deploy/nats/mallbots.conf`.
fn nats_conf_rights() -> BTreeMap<String, Vec<String>> {
    let conf = std::fs::read_to_string(format!("{ROOT}/deploy/nats/mallbots.conf")).unwrap();
    let mut rights = BTreeMap::new();
    for block in conf.split("user: ").skip(1) {
        let user = block.split_whitespace().next().unwrap().to_owned();
        let allow = block
            .split("publish: { allow: [")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .unwrap_or_else(|| panic!("{user} has no publish rights"));
        let subjects = allow
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        rights.insert(user, subjects);
    }
    rights
}

#[test]
fn the_deployment_is_locked_down() {
    let docs = documents("deploy/k8s/mallbots.yaml");
    let image = format!("mallbots:{}", env!("CARGO_PKG_VERSION"));
    let deployments: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Deployment").collect();
    assert_eq!(
        deployments.len(),
        mallbots::MODULES.len() + 1,
        "modules and the gateway"
    );
    for deployment in &deployments {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["automountServiceAccountToken"], false,
            "{name}: no API token"
        );
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{name}: seccomp"
        );
        assert_eq!(
            pod["containers"][0]["image"],
            image.as_str(),
            "{name}: a pinned image"
        );
    }
    let rights = nats_conf_rights();
    for module in mallbots::MODULES {
        let env = env_of(named(&docs, "Deployment", module.name));
        assert_eq!(env["NATS_USER"], module.name, "its own NATS identity");
        assert_eq!(env["NATS_PASSWORD"]["secretKeyRef"]["key"], module.name);
        assert!(
            env.contains_key("NATS_CA"),
            "{}: NATS over TLS",
            module.name
        );
        assert!(
            rights.contains_key(module.name),
            "{} has NATS rights",
            module.name
        );
    }

    // The chart's users are the configuration's, right for right, over TLS.
    let nats = &documents("deploy/k8s/nats-values.yaml")[0];
    assert_eq!(nats["config"]["nats"]["tls"]["enabled"], true);
    let chart: BTreeMap<String, Vec<String>> = nats["config"]["merge"]["authorization"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| {
            let allow = user["permissions"]["publish"]["allow"].as_array().unwrap();
            (
                user["user"].as_str().unwrap().to_owned(),
                allow
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(chart, rights);

    // Nothing reaches a pod of the mall unless a policy says so.
    let policies = documents("deploy/k8s/network.yaml");
    let deny = named(&policies, "NetworkPolicy", "mallbots-default-deny");
    assert_eq!(
        deny["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/part-of"],
        "mallbots"
    );
    assert!(deny["spec"].get("ingress").is_none(), "denies all ingress");
    assert_eq!(policies.len(), 4);
}
