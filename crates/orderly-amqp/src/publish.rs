//! Publishing one message and waiting for the broker's confirm; shared by the publisher and
//! the consumer's dead-letter and retry paths.

use lapin::Confirmation;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel};

use crate::error::ErrorKind;

/// Delivery mode 2: the broker writes the message to disk (with a durable queue).
pub(crate) const PERSISTENT: u8 = 2;

/// Publishes `payload` as a mandatory message on a channel in confirm mode and returns once
/// the broker confirmed it: an unroutable message (returned) or a nack is an error.
pub(crate) async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), ErrorKind> {
    let unconfirmed = |error: lapin::Error| ErrorKind::Publish {
        reason: error.to_string(),
    };
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            options,
            payload,
            properties,
        )
        .await
        .map_err(unconfirmed)?;
    match confirm.await.map_err(unconfirmed)? {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(ErrorKind::Unroutable {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
        }),
        Confirmation::Nack(_) => Err(ErrorKind::Nacked),
        Confirmation::NotRequested => Err(ErrorKind::Publish {
            reason: "publisher confirms are off on this channel".into(),
        }),
    }
}
