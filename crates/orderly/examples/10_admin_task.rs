//! Admin one-off tasks (twelve-factor XII): a report that runs as its own process, with the
//! same configuration and the same components as the service, then stops everything cleanly;
//! its result is the exit code.
//!
//! One binary, one process type per subcommand. Both build `config → db` with the same
//! function; the service adds its server, the task adds itself with
//! [`add_task`](orderly::SystemBuilder::add_task):
//!
//! ```text
//! cargo run -p orderly --example 10_admin_task                  # the service, until Ctrl-C
//! cargo run -p orderly --example 10_admin_task -- late-orders   # the report: exit 0
//! LATE_ORDERS=3 cargo run -p orderly --example 10_admin_task -- late-orders   # exit 2
//! DATABASE_URL=mysql://x cargo run -p orderly --example 10_admin_task -- late-orders   # exit 78
//! ```
//!
//! Every lifecycle event and the shutdown report are JSON lines on stdout.
//!
//! | variable | effect |
//! |---|---|
//! | `DATABASE_URL` | default `memory://orders`; any other scheme is invalid configuration (exit 78) |
//! | `LATE_ORDERS=N` | the in-memory database holds N late orders (a stand-in for real data) |

use std::process::ExitCode;

use orderly::{
    BoxError, Component, Context, Env, ExitWith, InvalidConfig, Key, System, SystemBuilder,
};

/// Exit code of a report that found problems (0 is "all good", 1 "the report itself failed").
const FOUND_PROBLEMS: u8 = 2;

/// The process types of this binary.
enum Command {
    Serve,
    LateOrders,
}

#[derive(Clone, Debug)]
struct Config {
    database_url: String,
    late_orders: usize,
}

impl Config {
    fn from_env(env: &Env) -> Result<Self, InvalidConfig> {
        let database_url = env
            .get("DATABASE_URL")
            .unwrap_or_else(|| "memory://orders".into());
        if !database_url.starts_with("memory://") {
            return Err(InvalidConfig::new(format!(
                "DATABASE_URL: '{database_url}' is not supported (use memory://…)"
            )));
        }
        let late_orders = match env.get("LATE_ORDERS") {
            None => 0,
            Some(text) => text.parse().map_err(|_| {
                InvalidConfig::new(format!("LATE_ORDERS: '{text}' is not a number"))
            })?,
        };
        Ok(Self {
            database_url,
            late_orders,
        })
    }
}

/// A stand-in for a connection pool: the orders, each late or not.
#[derive(Clone, Debug)]
struct Db {
    late: Vec<bool>,
}

/// The components the service and its tasks share: configuration, then the database.
fn shared_components(system: &mut SystemBuilder, env: Env) -> Key<Db> {
    let config = system.add_fn("config", (), move |(), _ctx| {
        let config = Config::from_env(&env);
        async move { config }
    });
    system.add_fn("db", config, |config: Config, _ctx| async move {
        tracing::info!(url = config.database_url, "connected");
        let mut late = vec![false; 10];
        late.extend(std::iter::repeat_n(true, config.late_orders));
        Ok::<_, BoxError>(Db { late })
    })
}

/// The service's server: serves until asked to stop.
struct Server;

impl Component for Server {
    type Deps = Db;
    type Resource = ();

    async fn start(&mut self, _db: Db, ctx: Context) -> Result<(), BoxError> {
        let stopping = ctx.clone();
        ctx.spawn("serve", async move {
            stopping.stopping().await;
            Ok::<_, BoxError>(())
        });
        Ok(())
    }
}

/// The one-off report: counts late orders; finding some is exit code 2.
async fn late_orders(db: Db, _ctx: Context) -> Result<(), BoxError> {
    let late = db.late.iter().filter(|late| **late).count();
    tracing::info!(late, orders = db.late.len(), "late orders counted");
    if late > 0 {
        return Err(ExitWith::new(FOUND_PROBLEMS, format!("{late} late orders")).into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(std::io::stdout)
        .init();

    let command = match std::env::args().nth(1).as_deref() {
        None | Some("serve") => Command::Serve,
        Some("late-orders") => Command::LateOrders,
        Some(other) => {
            tracing::error!(command = other, "unknown command (serve, late-orders)");
            return ExitCode::from(64);
        }
    };
    let env = Env::process();
    let name = match command {
        Command::Serve => "orders",
        Command::LateOrders => "late-orders",
    };
    let mut system = System::builder(name).env(env.clone()).log_all_events();
    let db = shared_components(&mut system, env);
    match command {
        Command::Serve => {
            system.add("server", db, Server);
        }
        Command::LateOrders => system.add_task("late-orders", db, late_orders),
    }
    system.run().await
}
