//! A database of one test, a TCP proxy the test can cut, a system around a pool, and a log
//! recorder.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orderly::{Env, Key, System, SystemBuilder};
use orderly_sql::{DatabaseUrl, PoolSettings, SqlPool};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// The bound of every wait on a real server; generous, since the machine is shared.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Waits for `future`, failing the test after [`PATIENCE`].
pub(crate) async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not within {PATIENCE:?}"),
    }
}

/// The administrative URL of the test server.
fn admin_url() -> String {
    std::env::var("POSTGRES_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A PostgreSQL database of one test, created fresh and dropped by [`TestDb::drop`].
pub(crate) struct TestDb {
    pub(crate) name: String,
    admin: PgConnectOptions,
}

impl TestDb {
    pub(crate) async fn create() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "orderly_sql_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin: PgConnectOptions = admin_url().parse().unwrap();
        let mut conn = admin.connect().await.unwrap();
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        Self { name, admin }
    }

    /// The server's address.
    pub(crate) fn server(&self) -> SocketAddr {
        format!("{}:{}", self.admin.get_host(), self.admin.get_port())
            .parse()
            .unwrap()
    }

    /// The URL of this database on the server, or through `addr` (a proxy).
    pub(crate) fn url_via(&self, addr: SocketAddr) -> DatabaseUrl {
        format!(
            "postgres://{}@{addr}/{}",
            self.admin.get_username(),
            self.name
        )
        .parse()
        .unwrap()
    }

    pub(crate) fn url(&self) -> DatabaseUrl {
        self.url_via(self.server())
    }

    /// A direct connection to this database (not through the pool under test).
    pub(crate) async fn connect(&self) -> PgConnection {
        PgConnection::connect(self.url().expose()).await.unwrap()
    }

    pub(crate) async fn drop(mut self) {
        let name = std::mem::take(&mut self.name);
        drop_database(&self.admin, &name).await;
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) {
    let mut conn = admin.connect().await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// A test that failed before [`TestDb::drop`] still drops its database, from a thread of its
/// own (the test's runtime may be the one unwinding).
impl Drop for TestDb {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let (admin, name) = (self.admin.clone(), std::mem::take(&mut self.name));
        let cleanup = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(drop_database(&admin, &name));
        });
        let _ = cleanup.join();
    }
}

/// A TCP proxy on 127.0.0.1:0 in front of the real server. [`cut`](Proxy::cut) closes every
/// connection through it and then closes each new one as soon as it is accepted (a database
/// behind a load balancer that lost it); [`reopen`](Proxy::reopen) forwards again.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    open: watch::Sender<bool>,
    /// How many connections were turned away while cut.
    turned_away: watch::Sender<u64>,
    tasks: TaskTracker,
    stop: tokio_util::sync::CancellationToken,
}

impl Proxy {
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = watch::Sender::new(true);
        let turned_away = watch::Sender::new(0);
        let tasks = TaskTracker::new();
        let stop = tokio_util::sync::CancellationToken::new();
        let (accept_open, accept_turned, accept_tasks, accept_stop) = (
            open.clone(),
            turned_away.clone(),
            tasks.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap(),
                    () = accept_stop.cancelled() => return,
                };
                if !*accept_open.borrow() {
                    drop(client);
                    accept_turned.send_modify(|n| *n += 1);
                    continue;
                }
                let mut open = accept_open.subscribe();
                let stop = accept_stop.clone();
                accept_tasks.spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = open.wait_for(|open| !*open) => {}
                        () = stop.cancelled() => {}
                    }
                    // Dropping both ends closes them: the connection is cut.
                });
            }
        });
        Self {
            addr,
            open,
            turned_away,
            tasks,
            stop,
        }
    }

    pub(crate) fn cut(&self) {
        self.open.send_replace(false);
    }

    pub(crate) fn reopen(&self) {
        self.open.send_replace(true);
    }

    /// Waits until at least `n` connections were turned away while cut.
    pub(crate) async fn turned_away(&self, n: u64) {
        let mut count = self.turned_away.subscribe();
        within("connections turned away", count.wait_for(|c| *c >= n))
            .await
            .unwrap();
    }

    pub(crate) async fn close(self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Settings for tests: short waits so failures are quick.
pub(crate) fn settings(url: DatabaseUrl) -> PoolSettings {
    PoolSettings::new(url)
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(20))
        .connect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .health_check(Duration::from_millis(50), Duration::from_secs(2))
}

/// A system of one test: `settings` → `db` (a pool of the backend `DB`).
pub(crate) fn system<DB: orderly_sql::Backend>(
    settings: PoolSettings,
) -> (SystemBuilder, Key<sqlx::Pool<DB>>) {
    let mut system = System::builder("test").env(Env::empty());
    let settings = system.add_fn("settings", (), move |(), _ctx| {
        let settings = settings.clone();
        async move { Ok::<_, std::convert::Infallible>(settings) }
    });
    let db = system.add("db", settings, SqlPool::<DB>::new());
    (system, db)
}

/// Every log line written on this thread while recording.
///
/// One global subscriber, installed once, writes each line to the recorder of the thread that
/// logged it: a `#[tokio::test]` runs its system on one thread, and tests run in parallel.
/// (Per-thread subscribers would race on tracing's global callsite cache.)
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static RECORDER: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

/// Stops recording when dropped.
pub(crate) struct Recording(());

impl Drop for Recording {
    fn drop(&mut self) {
        RECORDER.with(|r| r.borrow_mut().take());
    }
}

/// Writes to the recorder of the current thread, if any.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        RECORDER.with(|r| {
            if let Some(logs) = r.borrow().as_ref() {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Records this thread's logs until the guard drops.
    pub(crate) fn record(&self) -> Recording {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            tracing_subscriber::fmt()
                .with_writer(|| ThreadWriter)
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .init();
        });
        RECORDER.with(|r| *r.borrow_mut() = Some(self.clone()));
        Recording(())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
