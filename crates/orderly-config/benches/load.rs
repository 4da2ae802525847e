//! What loading settings costs: the price of a start or a reload, and of one poll of a watched
//! file.
//!
//! ```text
//! cargo bench -p orderly-config --bench load
//! ```
//!
//! 1. `valid`: a service's settings (24 keys in four tables) from a TOML file, a YAML override
//!    and six variables: read, parse, merge, deserialize.
//! 2. `invalid_n`: the same with `n` invalid values among the variables. serde stops at the
//!    first error, so every problem costs one more extraction (see `src/extract.rs`): this is
//!    the price of reporting all of them at once.
//! 3. `poll`: what the watcher does each interval: read both files and hash them.

use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use divan::Bencher;
use orderly::Env;
use orderly_config::{Config, Secret};
use serde::Deserialize;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only loaded")]
struct Settings {
    name: String,
    http: Http,
    db: Db,
    broker: Broker,
    limits: Limits,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only loaded")]
struct Http {
    host: String,
    port: u16,
    #[serde(with = "orderly_config::duration")]
    timeout: Duration,
    #[serde(with = "orderly_config::duration")]
    keep_alive: Duration,
    hosts: Vec<String>,
    debug: bool,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only loaded")]
struct Db {
    url: String,
    password: Secret<String>,
    pool_size: u16,
    #[serde(with = "orderly_config::duration")]
    connect_timeout: Duration,
    #[serde(with = "orderly_config::duration")]
    idle_timeout: Duration,
    migrate: bool,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only loaded")]
struct Broker {
    url: String,
    prefetch: u16,
    queue: String,
    #[serde(with = "orderly_config::duration")]
    ack_wait: Duration,
    redeliveries: u8,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only loaded")]
struct Limits {
    #[serde(with = "orderly_config::size")]
    body: u64,
    #[serde(with = "orderly_config::size")]
    header: u32,
    requests_per_second: u32,
    burst: u32,
}

const TOML: &str = r#"
name = "apc"

[http]
host = "0.0.0.0"
port = 8080
timeout = "30s"
keep_alive = "75s"
hosts = ["apc.fab.local", "apc"]
debug = false

[db]
url = "postgres://apc@db/apc"
password = "changeme"
pool_size = 10
connect_timeout = "5s"
idle_timeout = "10m"
migrate = true

[broker]
url = "amqp://broker:5672"
prefetch = 32
queue = "apc.measurements"
ack_wait = "30s"
redeliveries = 5

[limits]
body = "10MiB"
header = "16KiB"
requests_per_second = 500
burst = 100
"#;

const YAML: &str = "http:\n  port: 8081\ndb:\n  pool_size: 20\nlimits:\n  burst: 200\n";

struct Files {
    _dir: tempfile::TempDir,
    toml: PathBuf,
    yaml: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let toml = dir.path().join("config.toml");
    let yaml = dir.path().join("local.yaml");
    std::fs::write(&toml, TOML).expect("config.toml");
    std::fs::write(&yaml, YAML).expect("local.yaml");
    Files {
        _dir: dir,
        toml,
        yaml,
    }
}

fn config(files: &Files, env: Vec<(&'static str, &'static str)>) -> Config<Settings> {
    Config::<Settings>::builder("APC")
        .file(&files.toml)
        .file(&files.yaml)
        .env(Env::from_pairs(env))
        .strict()
        .build()
}

const VALID_ENV: [(&str, &str); 6] = [
    ("APC_DB__PASSWORD", "s3cret"),
    ("APC_DB__URL", "postgres://apc@db-2/apc"),
    ("APC_HTTP__TIMEOUT", "10s"),
    ("APC_BROKER__PREFETCH", "64"),
    ("APC_LIMITS__BODY", "1MiB"),
    ("APC_NAME", "apc-1"),
];

const INVALID_ENV: [(&str, &str); 16] = [
    ("APC_HTTP__PORT", "http"),
    ("APC_HTTP__TIMEOUT", "soon"),
    ("APC_HTTP__KEEP_ALIVE", "forever"),
    ("APC_HTTP__DEBUG", "maybe"),
    ("APC_DB__POOL_SIZE", "ten"),
    ("APC_DB__CONNECT_TIMEOUT", "5"),
    ("APC_DB__IDLE_TIMEOUT", "later"),
    ("APC_DB__MIGRATE", "perhaps"),
    ("APC_BROKER__PREFETCH", "-1"),
    ("APC_BROKER__ACK_WAIT", "1 minute"),
    ("APC_BROKER__REDELIVERIES", "999"),
    ("APC_LIMITS__BODY", "big"),
    ("APC_LIMITS__HEADER", "huge"),
    ("APC_LIMITS__REQUESTS_PER_SECOND", "many"),
    ("APC_LIMITS__BURST", "lots"),
    ("APC_NAMEE", "typo"),
];

#[divan::bench]
fn valid(bencher: Bencher<'_, '_>) {
    let files = files();
    let config = config(&files, VALID_ENV.to_vec());
    assert!(config.load().is_ok());
    bencher.bench_local(|| config.load());
}

#[divan::bench(args = [1, 4, 16])]
fn invalid(bencher: Bencher<'_, '_>, n: usize) {
    let files = files();
    let env: Vec<_> = VALID_ENV.iter().chain(&INVALID_ENV[..n]).copied().collect();
    let config = config(&files, env);
    let problems = config
        .load()
        .expect_err("invalid settings")
        .problems()
        .len();
    assert_eq!(problems, n);
    bencher.bench_local(|| config.load());
}

#[divan::bench]
fn poll(bencher: Bencher<'_, '_>) {
    let files = files();
    let read = |path: &Path| {
        let mut hasher = DefaultHasher::new();
        hasher.write(&std::fs::read(path).expect("the file"));
        hasher.finish()
    };
    bencher.bench_local(|| (read(&files.toml), read(&files.yaml)));
}
