//! Settings from the environment through orderly-config: variables named, secrets hidden.

use std::sync::Arc;
use std::time::Duration;

use orderly::{Env, System};
use orderly_config::Config;
use orderly_sql::{PoolSettings, SqlPool};

const PASSWORD: &str = "s3cret-never-shown";

fn load(pairs: &[(&str, &str)]) -> Result<PoolSettings, orderly_config::ConfigError> {
    let env = Env::from_pairs(pairs.iter().copied());
    Config::<PoolSettings>::builder("DATABASE")
        .env(env)
        .build()
        .load()
}

#[test]
fn every_setting_has_a_variable() {
    let settings = load(&[
        ("DATABASE_URL", "postgres://app:pw@db:5432/orders"),
        ("DATABASE_MAX_CONNECTIONS", "20"),
        ("DATABASE_MIN_CONNECTIONS", "2"),
        ("DATABASE_ACQUIRE_TIMEOUT", "3s"),
        ("DATABASE_CONNECT_TIMEOUT", "15s"),
        ("DATABASE_CONNECT_BACKOFF", "50ms"),
        ("DATABASE_CONNECT_BACKOFF_MAX", "2s"),
        ("DATABASE_HEALTH_INTERVAL", "10s"),
        ("DATABASE_HEALTH_TIMEOUT", "1s"),
        ("DATABASE_BUSY_TIMEOUT", "250ms"),
    ])
    .unwrap();
    assert_eq!(settings.url.expose(), "postgres://app:pw@db:5432/orders");
    assert_eq!(
        (settings.max_connections, settings.min_connections),
        (20, 2)
    );
    assert_eq!(settings.acquire_timeout, Duration::from_secs(3));
    assert_eq!(settings.connect_timeout, Duration::from_secs(15));
    assert_eq!(settings.connect_backoff, Duration::from_millis(50));
    assert_eq!(settings.connect_backoff_max, Duration::from_secs(2));
    assert_eq!(settings.health_interval, Duration::from_secs(10));
    assert_eq!(settings.health_timeout, Duration::from_secs(1));
    assert_eq!(settings.busy_timeout, Duration::from_millis(250));
}

#[test]
fn only_the_url_is_required() {
    let settings = load(&[("DATABASE_URL", "sqlite::memory:")]).unwrap();
    assert_eq!(settings.max_connections, 10);
    assert_eq!(settings.connect_timeout, Duration::from_secs(20));

    let error = load(&[]).unwrap_err().to_string();
    assert!(error.contains("DATABASE_URL"), "{error}");
}

#[test]
fn a_bad_url_names_the_variable_and_not_the_password() {
    let url = format!("mysql://root:{PASSWORD}@db/orders");
    let error = load(&[
        ("DATABASE_URL", &url),
        ("DATABASE_HEALTH_INTERVAL", "often"),
    ])
    .unwrap_err();
    let message = format!("{error} {error:?}");
    assert!(message.contains("DATABASE_URL"), "{message}");
    assert!(message.contains("'mysql'"), "{message}");
    assert!(
        message.contains("DATABASE_HEALTH_INTERVAL"),
        "every problem at once: {message}"
    );
    assert!(!message.contains(PASSWORD), "{message}");
}

#[test]
fn debug_masks_the_password() {
    let url = format!("postgres://app:{PASSWORD}@db:5432/orders?password={PASSWORD}");
    let settings = load(&[("DATABASE_URL", &url)]).unwrap();
    let shown = format!("{settings:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(
        shown.contains("postgres://app:***@db:5432/orders"),
        "{shown}"
    );
}

/// The configuration component feeds the pool: a service's wiring, against SQLite.
#[tokio::test]
async fn the_config_component_feeds_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fab.db").display());
    let env = Env::from_pairs([
        ("DATABASE_URL", url.as_str()),
        ("DATABASE_MAX_CONNECTIONS", "3"),
    ]);
    let mut system = System::builder("test").env(Env::empty());
    let config = system.add(
        "config",
        (),
        Config::<PoolSettings>::builder("DATABASE").env(env).build(),
    );
    let db = system.add(
        "db",
        config.map(|s: &Arc<PoolSettings>| PoolSettings::clone(s)),
        SqlPool::sqlite(),
    );
    let running = system.build().unwrap().start().await.unwrap();
    let pool = running.resource(db).unwrap();
    assert_eq!(pool.options().get_max_connections(), 3);
    assert!(running.stop().await.is_clean());
}
