//! The handler a consumer calls for each message, and how it says it failed.

use std::fmt;
use std::future::Future;

use orderly::BoxError;

use crate::delivery::Delivery;

/// Handles one message of type `M`; the consumer acknowledges it only after `handle` returned
/// `Ok`.
///
/// Any `Fn(M, Delivery) -> impl Future<Output = Result<(), HandlerError>>` that can be shared
/// between tasks is a handler; a type of your own can implement the trait too. Handlers run
/// concurrently, up to the consumer's prefetch.
///
/// When the consumer stops, handlers already running are awaited (within the component's stop
/// timeout), never cancelled: make the effect durable, then return.
pub trait Handler<M>: Send + Sync + 'static {
    /// Handles `message`.
    fn handle(
        &self,
        message: M,
        delivery: Delivery,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<M, F, Fut> Handler<M> for F
where
    F: Fn(M, Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    fn handle(
        &self,
        message: M,
        delivery: Delivery,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        self(message, delivery)
    }
}

/// A handler's failure, and what should happen to the message.
///
/// `?` on any error gives [`retry`](Self::retry): the message is delivered again, until the
/// redelivery limit sends it to the dead-letter path. Use [`reject`](Self::reject) for a
/// message that can never succeed (it fails validation, say): it is dead-lettered at once.
///
/// Not an [`std::error::Error`] itself, so that `?` converts every error into it.
pub struct HandlerError {
    kind: HandlerErrorKind,
    source: BoxError,
}

/// What a failed handler asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerErrorKind {
    /// A transient failure (the database is down, a timeout): deliver the message again.
    Retry,
    /// A permanent failure: dead-letter the message without trying again.
    Reject,
}

impl HandlerError {
    /// A transient failure: the message is delivered again, up to the redelivery limit.
    pub fn retry(error: impl Into<BoxError>) -> Self {
        Self {
            kind: HandlerErrorKind::Retry,
            source: error.into(),
        }
    }

    /// A permanent failure: the message goes to the dead-letter path at once.
    pub fn reject(error: impl Into<BoxError>) -> Self {
        Self {
            kind: HandlerErrorKind::Reject,
            source: error.into(),
        }
    }

    /// What the handler asks for.
    pub fn kind(&self) -> HandlerErrorKind {
        self.kind
    }

    /// Whether the message should be delivered again.
    pub fn is_retry(&self) -> bool {
        self.kind == HandlerErrorKind::Retry
    }

    /// The handler's error.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }

    /// The handler's error, owned.
    pub fn into_error(self) -> BoxError {
        self.source
    }
}

impl<E: Into<BoxError>> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self::retry(error)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}
