#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use crate::{Delivery, Disposition, HandlerError, Json, RedeliveryPolicy, settle};

#[derive(Debug, Deserialize)]
struct Order {
    id: u64,
}

fn delivery(attempt: u32) -> Delivery {
    Delivery::new("m-1", "orders", attempt)
}

async fn ok(Json(order): Json<Order>, d: Delivery) -> Result<(), HandlerError> {
    assert_eq!(order.id, 7);
    assert_eq!(d.id(), "m-1");
    Ok(())
}

async fn flaky(_: Json<Order>, _: Delivery) -> Result<(), HandlerError> {
    Err(std::io::Error::other("database unreachable"))?
}

async fn invalid(_: Json<Order>, _: Delivery) -> Result<(), HandlerError> {
    Err(HandlerError::reject("id 7 does not exist"))
}

const ORDER: &[u8] = br#"{"id":7}"#;

#[tokio::test]
async fn a_handler_that_succeeds_acknowledges() {
    let policy = RedeliveryPolicy::default();
    assert_eq!(
        settle(&ok, ORDER, delivery(1), &policy, None).await,
        Disposition::Ack
    );
}

#[tokio::test]
async fn a_failure_retries_until_the_last_delivery_then_dead_letters() {
    let policy = RedeliveryPolicy::new(3).retry_delay(Duration::from_millis(250));
    for attempt in 1..3 {
        assert_eq!(
            settle(&flaky, ORDER, delivery(attempt), &policy, None).await,
            Disposition::Retry {
                delay: Duration::from_millis(250)
            },
            "attempt {attempt}"
        );
    }
    let Disposition::DeadLetter { reason } =
        settle(&flaky, ORDER, delivery(3), &policy, None).await
    else {
        panic!("the third delivery of three must be dead-lettered");
    };
    assert_eq!(
        reason,
        "failed 3 deliveries; last error: database unreachable"
    );
}

#[tokio::test]
async fn a_rejection_dead_letters_at_once() {
    let policy = RedeliveryPolicy::default();
    let disposition = settle(&invalid, ORDER, delivery(1), &policy, None).await;
    assert_eq!(
        disposition,
        Disposition::DeadLetter {
            reason: "rejected: id 7 does not exist".into()
        }
    );
}

#[tokio::test]
async fn a_payload_that_does_not_decode_dead_letters_without_calling_the_handler() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = {
        let calls = calls.clone();
        move |_: Json<Order>, _: Delivery| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        }
    };
    let policy = RedeliveryPolicy::default();
    for payload in [&b"not json"[..], br#"{"id":-1}"#, b""] {
        let disposition = settle(&counted, payload, delivery(1), &policy, None).await;
        let Disposition::DeadLetter { reason } = disposition else {
            panic!("{payload:?} must be dead-lettered, got {disposition:?}");
        };
        assert!(reason.starts_with("invalid JSON message"), "{reason}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_panicking_handler_is_a_failure_not_a_crash() {
    let panics = |_: Bytes, _: Delivery| async {
        if true {
            panic!("index out of bounds");
        }
        Ok::<(), HandlerError>(())
    };
    let policy = RedeliveryPolicy::new(1);
    let disposition = settle(&panics, &b"x"[..], delivery(1), &policy, None).await;
    assert_eq!(
        disposition,
        Disposition::DeadLetter {
            reason: "failed 1 deliveries; last error: handler panicked: index out of bounds".into()
        }
    );
}

#[test]
fn at_least_one_delivery() {
    assert_eq!(RedeliveryPolicy::new(0).max_deliveries(), 1);
    assert_eq!(Delivery::new("m", "q", 0).attempt(), 1);
}
