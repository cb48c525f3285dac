//! Cluster mode with real processes: PostgreSQL, moto's S3, nginx, two replicas; garbage
//! collection and the audit chain across them.

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod gc;
mod stack;
