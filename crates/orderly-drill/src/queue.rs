//! The message-queue drill: publisher, consumer replicas restarted or killed while it
//! publishes, and the effects table checked for every confirmed message.

mod amqp;
mod broker;
mod database;
mod drill;
mod nats;
mod options;
mod publish;
mod replicas;
mod report;

pub use drill::QueueDrill;
pub use options::{
    Broker, Cleanup, DEFAULT_BODY, DEFAULT_EFFECTS_QUERY, QueueExpectation, QueueOptions, Scenario,
    Target,
};
pub use replicas::{ConsumerRecord, Stop};
pub use report::{QueueEvent, QueueReport};
