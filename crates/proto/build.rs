//! Compiles `proto/*.proto` with protox (pure Rust: no `protoc` on the machine, nothing
//! downloaded), and turns `proto/catalog.txt` into each message's name constant, its payload's
//! `Payload` implementation and the `CATALOG` table.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/stream_message.proto",
        "proto/message_types.proto",
        "proto/stores.proto",
        "proto/customers.proto",
        "proto/baskets.proto",
        "proto/payments.proto",
        "proto/ordering.proto",
        "proto/depot.proto",
        "proto/notifications.proto",
        "proto/search.proto",
    ];
    let fds = protox::compile(protos, ["proto"])?;

    // gRPC reflection serves this set, so clients like grpcurl see every service without .proto files.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("mallbots_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rerun-if-changed=proto/catalog.txt");
    catalog(&std::fs::read_to_string("proto/catalog.txt")?, &out)
}

/// One line of `catalog.txt`.
struct Row<'a> {
    kind: &'a str,
    module: &'a str,
    constant: &'a str,
    name: &'a str,
    subject: &'a str,
    payload: Option<&'a str>,
    note: String,
}

fn parse(line: &str) -> Result<Row<'_>, String> {
    let mut columns = line.split_whitespace();
    let mut next = || {
        columns
            .next()
            .ok_or_else(|| format!("a column missing: {line}"))
    };
    let row = Row {
        kind: next()?,
        module: next()?,
        constant: next()?,
        name: next()?,
        subject: next()?,
        payload: Some(next()?).filter(|payload| *payload != "-"),
        note: columns.collect::<Vec<_>>().join(" "),
    };
    if !["event", "command", "reply"].contains(&row.kind) {
        return Err(format!("unknown kind {}: {line}", row.kind));
    }
    Ok(row)
}

/// Writes `catalog_<module>.rs` (included in the module) for each module and `catalog.rs`.
fn catalog(text: &str, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let rows = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    let mut modules: BTreeMap<&str, String> = BTreeMap::new();
    let mut payloads: BTreeMap<(&str, &str), Vec<&Row<'_>>> = BTreeMap::new();
    let mut table = String::from("/// Every message of the system, from `proto/catalog.txt`.\n");
    table.push_str("pub const CATALOG: &[MessageSpec] = &[\n");
    for row in &rows {
        let code = modules.entry(row.module).or_default();
        let doc = if row.note.is_empty() {
            format!("`{}`: {} on `{}`.", row.name, row.kind, row.subject)
        } else {
            row.note.clone()
        };
        writeln!(
            code,
            "/// {doc}\npub const {}: &str = {:?};",
            row.constant, row.name
        )?;
        let kind = capitalized(row.kind);
        let producer = match (row.kind, row.module) {
            (_, "am") => "any command handler",
            ("command", _) => "cosec",
            (_, module) => module,
        };
        let payload = row.payload.map_or("None".to_owned(), |payload| {
            format!("Some(\"{}pb.{payload}\")", row.module)
        });
        writeln!(
            table,
            "    MessageSpec {{ name: crate::{}::{}, subject: crate::{}, payload: {payload}, kind: Kind::{kind}, producer: {producer:?} }},",
            row.module, row.constant, row.subject
        )?;
        if let Some(payload) = row.payload {
            payloads.entry((row.module, payload)).or_default().push(row);
        }
    }
    table.push_str(
        "];\n\n/// Every payload type's names and subject as its `Payload` implementation says.\n",
    );
    table.push_str("#[cfg(test)]\npub(crate) fn payloads() -> Vec<(&'static [&'static str], &'static str)> {\n    vec![\n");
    for ((module, payload), rows) in &payloads {
        let first = rows[0];
        if rows
            .iter()
            .any(|row| row.subject != first.subject || row.kind != first.kind)
        {
            return Err(format!("{payload}'s messages differ in subject or kind").into());
        }
        let names: Vec<&str> = rows.iter().map(|row| row.constant).collect();
        // A payload sent under several names says which one it is (`name_in_catalog`, by hand).
        let name = if let [one] = names.as_slice() {
            (*one).to_owned()
        } else {
            "self.name_in_catalog()".to_owned()
        };
        writeln!(
            modules.entry(module).or_default(),
            "impl crate::Payload for {payload} {{\n    const NAMES: &'static [&'static str] = &[{}];\n    const SUBJECT: &'static str = crate::{};\n    const KIND: crate::Kind = crate::Kind::{};\n    fn name(&self) -> &'static str {{ {name} }}\n}}",
            names.join(", "),
            first.subject,
            capitalized(first.kind),
        )?;
        writeln!(
            table,
            "        (<crate::{module}::{payload} as crate::Payload>::NAMES, <crate::{module}::{payload} as crate::Payload>::SUBJECT),"
        )?;
    }
    table.push_str("    ]\n}\n");
    for (module, code) in modules {
        std::fs::write(out.join(format!("catalog_{module}.rs")), code)?;
    }
    std::fs::write(out.join("catalog.rs"), table)?;
    Ok(())
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
