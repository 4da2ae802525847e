//! Stop: the pool closes only after its dependents stopped, so connections they hold (a LISTEN
//! loop, an open transaction) are released first and the close does not deadlock.

use std::sync::{Arc, Mutex};

use orderly::{BoxError, Context};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use crate::support::{TestDb, settings, system, within};

#[tokio::test]
async fn dependents_holding_connections_stop_before_the_pool_closes() {
    let db = TestDb::create().await;
    let (mut system, key) = system::<sqlx::Postgres>(settings(db.url()));
    // What the dependents saw when they let go of their connections: was the pool still open?
    let released: Arc<Mutex<Vec<(&'static str, bool)>>> = Arc::default();
    let (heard_tx, mut heard) = mpsc::unbounded_channel::<String>();

    let seen = released.clone();
    system.add_fn("listener", key, move |pool: PgPool, ctx: Context| {
        let (seen, heard_tx) = (seen.clone(), heard_tx.clone());
        async move {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen("orders").await?;
            let stopping = ctx.clone();
            ctx.spawn("listen", async move {
                loop {
                    tokio::select! {
                        () = stopping.stopping() => break,
                        n = listener.recv() => { let _ = heard_tx.send(n?.payload().to_owned()); }
                    }
                }
                seen.lock().unwrap().push(("listener", !pool.is_closed()));
                drop(listener); // its connection goes back to the pool
                Ok::<_, BoxError>(())
            });
            Ok::<_, BoxError>(())
        }
    });
    let seen = released.clone();
    system.add_fn("writer", key, move |pool: PgPool, ctx: Context| {
        let seen = seen.clone();
        async move {
            let mut tx = pool.begin().await?;
            sqlx::query("CREATE TABLE held (id int)")
                .execute(&mut *tx)
                .await?;
            let stopping = ctx.clone();
            ctx.spawn("transaction", async move {
                stopping.stopping().await;
                seen.lock().unwrap().push(("writer", !pool.is_closed()));
                tx.commit().await?;
                Ok::<_, BoxError>(())
            });
            Ok::<_, BoxError>(())
        }
    });
    let running = system.build().unwrap().start().await.unwrap();
    let pool = running.resource(key).unwrap();

    // The listener really holds a live connection: a notification reaches it.
    sqlx::query("SELECT pg_notify('orders', 'o-1')")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        within("notification", heard.recv()).await.as_deref(),
        Some("o-1")
    );

    let report = within("stop", running.stop()).await;

    assert!(report.is_clean(), "{}", report.summary());
    let mut released = released.lock().unwrap().clone();
    released.sort();
    assert_eq!(released, [("listener", true), ("writer", true)]);
    assert!(pool.is_closed());
    // The transaction was committed at the writer's stop, before the close.
    let mut conn = db.connect().await;
    let (tables,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM information_schema.tables WHERE table_name = 'held'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, 1);
    drop(conn);
    db.drop().await;
}
