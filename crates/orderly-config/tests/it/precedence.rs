//! Precedence: defaults < file 1 < file 2 < environment, key by key, nested keys included; the
//! value forms every layer accepts.

use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Env, System};
use orderly_config::Config;
use serde::Deserialize;

use crate::support::{Dir, Settings};

#[test]
fn each_key_comes_from_the_last_layer_that_sets_it() {
    let dir = Dir::new();
    let first = dir.write(
        "config.toml",
        r#"
            name = "from file 1"
            [db]
            url = "postgres://file-1"
            pool_size = 10
            [http]
            port = 8081
            debug = true
        "#,
    );
    let second = dir.write(
        "local.yaml",
        "db:\n  pool_size: 20\n  timeout: 750ms\nhttp:\n  debug: false\n",
    );
    let env = Env::from_pairs([
        ("FAB_DB__URL", "postgres://env"),
        ("FAB_HTTP__DEBUG", "yes"),
        ("OTHER_NAME", "not ours"),
    ]);

    let settings = Config::<Settings>::builder("FAB")
        .file(&first)
        .file(&second)
        .env(env)
        .build()
        .load()
        .unwrap();

    assert_eq!(
        settings.name, "from file 1",
        "file 1 over the (absent) default"
    );
    assert_eq!(settings.db.url, "postgres://env", "env over file 1, nested");
    assert_eq!(settings.db.pool_size, 20, "file 2 over file 1, nested");
    assert_eq!(
        settings.db.timeout,
        Duration::from_millis(750),
        "file 2 over the default"
    );
    assert_eq!(settings.db.max_payload, 1 << 20, "the default, set nowhere");
    assert_eq!(
        settings.http.port, 8081,
        "file 1, untouched by file 2's `http` table"
    );
    assert!(settings.http.debug, "env over file 2 over file 1");
}

#[test]
fn json_files_optional_files_durations_and_sizes() {
    let dir = Dir::new();
    let base = dir.write(
        "base.json",
        r#"{ "name": "json", "db": { "timeout": "1m30s", "max_payload": "10MiB" } }"#,
    );
    let settings = Config::<Settings>::builder("FAB_")
        .file(&base)
        .file_optional(dir.path("absent.toml"))
        .env(Env::from_pairs([("FAB_HTTP__PORT", "9000")]))
        .build()
        .load()
        .unwrap();

    assert_eq!(settings.name, "json");
    assert_eq!(settings.db.timeout, Duration::from_secs(90));
    assert_eq!(settings.db.max_payload, 10 << 20);
    assert_eq!(settings.http.port, 9000);
}

#[test]
fn variables_are_text_read_as_numbers_booleans_lists_where_the_setting_takes_them() {
    let env = Env::from_pairs([
        ("APP_NAME", "12345"),
        ("APP_DB__PASSWORD", "[not, a, list]"),
        ("APP_DB__POOL_SIZE", "7"),
        ("APP_DB__TIMEOUT", "0"),
        ("APP_HTTP__HOSTS", "[a.example, b.example]"),
        ("APP_HTTP__DEBUG", "true"),
    ]);
    let settings = Config::<Settings>::builder("APP")
        .env(env)
        .build()
        .load()
        .unwrap();

    assert_eq!(
        settings.name, "12345",
        "digits stay text for a text setting"
    );
    assert_eq!(
        settings.db.password.expose(),
        "[not, a, list]",
        "a list for a list only"
    );
    assert_eq!(settings.db.pool_size, 7);
    assert_eq!(settings.db.timeout, Duration::ZERO);
    assert_eq!(settings.http.hosts, ["a.example", "b.example"]);
    assert!(settings.http.debug);
}

#[derive(Debug, Deserialize)]
struct Deep {
    a: A,
}

#[derive(Debug, Deserialize)]
struct A {
    b: B,
    #[serde(default)]
    keep: u8,
}

#[derive(Debug, Deserialize)]
struct B {
    c: String,
}

#[test]
fn a_variable_overrides_one_key_three_levels_down_and_leaves_its_siblings() {
    let dir = Dir::new();
    let file = dir.write("deep.toml", "[a]\nkeep = 3\n[a.b]\nc = \"file\"\n");
    let env = Env::from_pairs([("X_A__B__C", "env")]);
    let deep = Config::<Deep>::builder("X")
        .file(&file)
        .env(env)
        .build()
        .load()
        .unwrap();
    assert_eq!(deep.a.b.c, "env");
    assert_eq!(deep.a.keep, 3);
}

#[tokio::test]
async fn dependents_receive_the_settings_or_a_typed_part_of_them() {
    let env = Env::from_pairs([("FAB_NAME", "fab"), ("FAB_DB__POOL_SIZE", "12")]);
    let mut system = System::builder("app");
    let config = system.add(
        "config",
        (),
        Config::<Settings>::builder("FAB").env(env).build(),
    );
    let pool = system.add_fn(
        "pool",
        config.map(|c| c.db.pool_size),
        |size: u16, _ctx| async move { Ok::<_, BoxError>(size) },
    );

    let running = system.build().unwrap().start().await.unwrap();
    let settings: Arc<Settings> = running.resource(config).unwrap();
    assert_eq!(settings.name, "fab");
    assert_eq!(running.resource(pool), Some(12));
    assert!(running.stop().await.is_clean());
}
