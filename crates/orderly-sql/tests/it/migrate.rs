//! Migrations as an admin one-off task: applied to a fresh database, nothing the second time,
//! a failure is exit code 1 naming the migration.

use std::path::Path;

use orderly_sql::{Applied, PoolSettings, apply, migrate};
use sqlx::migrate::Migrator;

use crate::support::{Logs, TestDb, settings, system, within};

fn write_migrations(dir: &Path, files: &[(&str, &str)]) {
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
}

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "1_create_lots.sql",
        "CREATE TABLE lots (id text PRIMARY KEY);",
    ),
    ("2_add_tool.sql", "ALTER TABLE lots ADD COLUMN tool text;"),
];

/// Runs the migration task in a system of its own, as `fab migrate` would, and returns the
/// report.
async fn run_task<DB>(settings: PoolSettings, dir: &Path) -> orderly::Report
where
    DB: orderly_sql::Backend,
    DB::Connection: sqlx::migrate::Migrate,
{
    let migrator = Migrator::new(dir).await.unwrap();
    let (mut system, db) = system::<DB>(settings);
    system.add_task("migrate", db, migrate(migrator));
    let running = within("start", system.build().unwrap().start())
        .await
        .unwrap();
    within("migration task", running.wait()).await
}

#[tokio::test]
async fn the_task_applies_pending_migrations_and_nothing_the_second_time() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    write_migrations(dir.path(), MIGRATIONS);
    let logs = Logs::default();
    let _guard = logs.record();

    let first = run_task::<sqlx::Postgres>(settings(db.url()), dir.path()).await;
    assert!(first.is_clean(), "{}", first.summary());
    assert_eq!(first.exit_code, 0);
    assert!(logs.text().contains("migration applied"), "{}", logs.text());
    assert!(
        logs.text().contains("description=\"add tool\""),
        "{}",
        logs.text()
    );
    let mut conn = db.connect().await;
    sqlx::query("INSERT INTO lots (id, tool) VALUES ('L1', 'etch-3')")
        .execute(&mut conn)
        .await
        .unwrap();

    let second = run_task::<sqlx::Postgres>(settings(db.url()), dir.path()).await;
    assert!(second.is_clean(), "{}", second.summary());
    assert_eq!(
        logs.text().matches("migration applied").count(),
        2,
        "{}",
        logs.text()
    );
    assert!(logs.text().contains("applied=0"), "{}", logs.text());
    let (versions,): (i64,) = sqlx::query_as("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(versions, 2);
    drop(conn);
    db.drop().await;
}

#[tokio::test]
async fn apply_returns_what_it_applied() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    write_migrations(dir.path(), &MIGRATIONS[..1]);
    let pool = sqlx::PgPool::connect(db.url().expose()).await.unwrap();

    let migrator = Migrator::new(dir.path()).await.unwrap();
    let applied = apply(&migrator, &pool).await.unwrap();
    let versions: Vec<i64> = applied.iter().map(|a: &Applied| a.version).collect();
    assert_eq!(versions, [1]);
    assert_eq!(applied[0].description, "create lots");

    write_migrations(dir.path(), &MIGRATIONS[1..]);
    let migrator = Migrator::new(dir.path()).await.unwrap();
    let versions: Vec<i64> = apply(&migrator, &pool)
        .await
        .unwrap()
        .iter()
        .map(|a| a.version)
        .collect();
    assert_eq!(versions, [2]);
    assert_eq!(apply(&migrator, &pool).await.unwrap(), []);
    pool.close().await;
    db.drop().await;
}

#[tokio::test]
async fn a_failing_migration_is_exit_code_1_naming_it() {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    write_migrations(dir.path(), MIGRATIONS);
    write_migrations(
        dir.path(),
        &[("3_broken.sql", "ALTER TABLE no_such_table ADD x int;")],
    );

    let report = run_task::<sqlx::Postgres>(settings(db.url()), dir.path()).await;

    assert_eq!(report.exit_code, 1, "{}", report.summary());
    let reason = report.reason.to_string();
    assert!(reason.contains("'migrate'"), "{reason}");
    assert!(
        reason.contains(&format!(
            "migrating the database at {}/{}",
            db.server(),
            db.name
        )),
        "{reason}"
    );
    assert!(reason.contains("migration 3"), "{reason}");
    assert!(reason.contains("no_such_table"), "{reason}");
    // The ones before it were applied and stay.
    let mut conn = db.connect().await;
    let (versions,): (i64,) = sqlx::query_as("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(versions, 2);
    drop(conn);
    db.drop().await;
}

#[tokio::test]
async fn the_task_migrates_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    write_migrations(&migrations, MIGRATIONS);
    let file = dir.path().join("fab.db");
    let url = format!("sqlite://{}", file.display()).parse().unwrap();

    let report = run_task::<sqlx::Sqlite>(settings(url), &migrations).await;

    assert!(report.is_clean(), "{}", report.summary());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO lots (id, tool) VALUES ('L1', 'etch-3')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}
