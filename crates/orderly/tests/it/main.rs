//! Integration tests of the lifecycle core, one module per concern.

mod process;
mod smoke;
