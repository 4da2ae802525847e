//! Integration tests against the real RabbitMQ and PostgreSQL on this machine (`AMQP_URL`,
//! `POSTGRES_URL`); each test has its own vhost (and database), so they run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod consumer;
mod publisher;
mod reconnect;
mod settings;
mod support;
mod zero_loss;
