use super::*;

/// The build's SQLite takes as many attachments as `connect` promises, and no more.
#[tokio::test]
async fn sqlite_attaches_every_schema_it_promises() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..=SQLITE_MAX_ATTACHED).map(|n| format!("s{n}")).collect();
    let schemas: Vec<&str> = names.iter().map(String::as_str).collect();
    let (target, options) = (
        crate::Target::Sqlite(dir.path().to_owned()),
        Options::default(),
    );
    let all = &schemas[..SQLITE_MAX_ATTACHED];
    let db = crate::Db::connect(&target, all, &options).await.unwrap();
    let attached: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pragma_database_list")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(attached, i64::try_from(SQLITE_MAX_ATTACHED).unwrap() + 1);
    db.close().await;
    let refused = crate::Db::connect(&target, &schemas, &options).await;
    assert!(
        matches!(refused, Err(ConnectError::TooManySchemas(17))),
        "{refused:?}"
    );
}

#[test]
fn a_url_is_kept_as_is() {
    let url = "postgres://u:p@db:5432/mallbots";
    assert_eq!(postgres_url(url).unwrap(), url);
}

#[test]
fn the_books_key_value_form_becomes_a_url() {
    let conn = "host=postgres dbname=mallbots user=mallbots_user password='p w' search_path=ordering,public";
    assert_eq!(
        postgres_url(conn).unwrap(),
        "postgres://mallbots_user:p%20w@postgres:5432/mallbots"
    );
}

#[test]
fn an_unknown_key_is_an_error_not_a_guess() {
    let error = postgres_url("host=x colour=blue").unwrap_err();
    assert!(
        error.to_string().contains("unknown key \"colour\""),
        "{error}"
    );
}

#[test]
fn passwords_are_never_shown() {
    assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    assert_eq!(redact("host=h password=secret"), "host=h password=***");
    assert!(
        !format!("{:?}", Target::Postgres("postgres://u:secret@h/db".into())).contains("secret")
    );
}

#[test]
fn paths_are_percent_encoded() {
    assert_eq!(
        encode_path(Path::new("/tmp/a b?#/main.db")),
        "/tmp/a%20b%3F%23/main.db"
    );
}
