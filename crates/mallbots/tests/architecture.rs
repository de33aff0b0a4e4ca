//! `scripts/check-architecture` catches each invariant it checks: run on a small tree of
//! crates made for the purpose, it passes a clean one and fails each kind of breach with its
//! own message. (CI runs it on the real tree, which must pass.)

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::{path::Path, process::Command};

/// A tree with a framework crate (`db`) and two module crates, `a` and `b`, clean; then
/// `breach` written into it (path, contents).
fn check(breach: &[(&str, &str)]) -> (bool, String) {
    let root = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check-architecture");
    write(
        "scripts/check-architecture",
        &std::fs::read_to_string(script).unwrap(),
    );
    write("crates/db/Cargo.toml", "[dependencies]\n");
    write(
        "crates/db/src/lib.rs",
        "pub async fn begin() {}\n// LOCK TABLE t\n",
    );
    for module in ["a", "b"] {
        write(
            &format!("crates/{module}/Cargo.toml"),
            "[dependencies]\ndb.workspace = true\nproto.workspace = true\n",
        );
        write(
            &format!("crates/{module}/src/lib.rs"),
            "pub async fn handle(tx: &mut db::Conn) { repo::save(tx).await }\n",
        );
        write(
            &format!("crates/{module}/src/domain.rs"),
            "pub struct Order;\nimpl Order { pub fn place(&self) -> Vec<Event> { vec![] } }\n",
        );
        write(
            &format!("crates/{module}/src/repo.rs"),
            "const SQL: &str = \"SELECT id FROM a.orders WHERE id = $1\";\n",
        );
        write(
            &format!("crates/{module}/src/tests.rs"),
            "async fn t(db: Db) { let tx = db.begin().await; tx.commit().await; }\n",
        );
    }
    for (path, text) in breach {
        write(path, text);
    }
    let out = Command::new("bash")
        .arg(root.path().join("scripts/check-architecture"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fails(breach: &[(&str, &str)], says: &str) {
    let (passed, said) = check(breach);
    assert!(!passed, "{breach:?} passed the check");
    assert!(
        said.contains(says),
        "{breach:?}: expected {says:?} in {said}"
    );
}

#[test]
fn a_clean_tree_passes() {
    let (passed, said) = check(&[]);
    assert!(passed, "{said}");
}

#[test]
fn a_module_depending_on_another_fails() {
    fails(
        &[(
            "crates/a/Cargo.toml",
            "[dependencies]\nb.workspace = true\n",
        )],
        "module a depends on module b",
    );
}

#[test]
fn an_impure_domain_fails() {
    fails(
        &[("crates/b/src/domain.rs", "pub async fn load() {}\n")],
        "crates/b/src/domain must have no async",
    );
}

#[test]
fn a_mod_rs_fails() {
    fails(&[("crates/a/src/x/mod.rs", "\n")], "never foo/mod.rs");
}

#[test]
fn a_module_opening_or_ending_its_own_transaction_fails() {
    for code in [
        "let mut tx = db.begin().await?;",
        "tx.commit().await?;",
        "sqlx::query(\"BEGIN IMMEDIATE\")",
    ] {
        fails(
            &[("crates/a/src/rebuild.rs", code)],
            "module a opens or ends a transaction itself",
        );
    }
}

#[test]
fn backend_specific_sql_in_a_module_fails() {
    for code in [
        "\"LOCK TABLE a.orders IN EXCLUSIVE MODE\"",
        "\"SELECT id FROM a.orders WHERE id = $1 FOR UPDATE\"",
        "\"SELECT id::text FROM a.orders\"",
        "\"SELECT id FROM a.orders WHERE name ILIKE $1\"",
        "if db.backend() == db::Backend::Postgres {}",
    ] {
        fails(
            &[("crates/b/src/repo.rs", code)],
            "module b has backend-specific SQL",
        );
    }
}

#[test]
fn a_module_pairing_names_and_types_by_hand_fails() {
    for code in [
        "match message.name() { pb::ORDER_CREATED_EVENT => {} _ => {} }",
        "Subscription::new(SCHEMA, \"a-orders\", CHANNEL).accept(&[pb::ORDER_CREATED_EVENT])",
        "Message::new(pb::CHANNEL, pb::ORDER_CREATED_EVENT, &payload)",
        "Reply::new(pb::CREATED_REPLY, &payload)",
    ] {
        fails(
            &[("crates/a/src/handlers.rs", code)],
            "module a pairs message names with types by hand",
        );
    }
}

#[test]
fn a_module_spelling_its_spans_by_hand_fails() {
    fails(
        &[(
            "crates/b/src/app.rs",
            "#[tracing::instrument(name = \"b.place\", skip_all, fields(module = \"b\"))]\nasync fn place() {}",
        )],
        "module b spells its spans by hand",
    );
}
