//! One connection per component, with its health following the connection's state.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use orderly::{Context, Health};
use tokio::sync::watch;

use crate::error::{Error, ErrorKind};
use crate::settings::redact;

/// How long connecting may take before the start fails (the start timeout bounds it too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// Connects to `url` as `name`. The component is reported unhealthy while the connection is
/// lost, healthy again once the client reconnected (it retries forever); `connected` follows
/// the same state.
pub(crate) async fn connect(
    name: &Arc<str>,
    url: &str,
    ctx: &Context,
) -> Result<(Client, watch::Receiver<bool>), Error> {
    let (connected_tx, connected) = watch::channel(true);
    let connected_tx = Arc::new(connected_tx);
    let events_ctx = ctx.clone();
    let component = name.clone();
    let redacted = redact(url);
    let options = ConnectOptions::new()
        .name(&**name)
        .connection_timeout(CONNECT_TIMEOUT)
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            let exponent = u32::try_from(attempts.min(8)).unwrap_or(8);
            (Duration::from_millis(50) * 2u32.pow(exponent)).min(MAX_RECONNECT_DELAY)
        })
        .event_callback(move |event| {
            let ctx = events_ctx.clone();
            let connected = connected_tx.clone();
            let component = component.clone();
            async move {
                match event {
                    Event::Disconnected => {
                        tracing::warn!(component = &*component, "disconnected from NATS");
                        ctx.set_health(Health::unhealthy("disconnected from NATS"));
                        connected.send_replace(false);
                    }
                    Event::Connected => {
                        tracing::info!(component = &*component, "reconnected to NATS");
                        ctx.set_health(Health::Healthy);
                        connected.send_replace(true);
                    }
                    Event::SlowConsumer(_) | Event::ServerError(_) | Event::ClientError(_) => {
                        tracing::warn!(component = &*component, %event, "NATS client event");
                    }
                    Event::LameDuckMode | Event::Draining | Event::Closed => {
                        tracing::debug!(component = &*component, %event, "NATS client event");
                    }
                }
            }
        });
    let client = options.connect(url).await.map_err(|error| {
        Error::new(
            name,
            ErrorKind::Connect {
                url: redacted.clone(),
            },
        )
        .with(error)
    })?;
    tracing::info!(component = &**name, url = %redacted, "connected to NATS");
    Ok((client, connected))
}
