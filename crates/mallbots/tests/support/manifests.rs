//! Reading the deployment files offline: YAML documents, the environment a container gets, and
//! what the binary reads.

#![allow(dead_code, reason = "each test file uses part of it")]

use std::collections::{BTreeMap, BTreeSet};

use clap::CommandFactory as _;
use serde::Deserialize as _;
use serde_json::Value;

pub(crate) const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

pub(crate) fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{ROOT}/{file}")).expect("the file exists");
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            let value = serde_norway::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{file} is not YAML: {e}"));
            serde_json::to_value(value).expect("YAML maps to JSON")
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The environment variables the binary reads for `command` (clap's `env = …`).
pub(crate) fn reads(command: &str) -> BTreeSet<String> {
    let cli = mallbots::Cli::command();
    let sub = cli
        .find_subcommand(command)
        .unwrap_or_else(|| panic!("no subcommand {command}"));
    sub.get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

pub(crate) fn env_of(deployment: &Value) -> BTreeMap<String, Value> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("the container has env")
        .iter()
        .map(|e| {
            let name = e["name"].as_str().expect("a name").to_owned();
            let value = e
                .get("value")
                .cloned()
                .unwrap_or_else(|| e["valueFrom"].clone());
            (name, value)
        })
        .collect()
}

pub(crate) fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}
