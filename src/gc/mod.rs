//! Garbage collection that is safe while pulls go on (README "Reclaiming disk";
//! docs/registry-facts.md, "Garbage collection").
//!
//! A job is refused before it starts when it could not be safe: no usable `REGISTRY_CONFIG`,
//! a blob-descriptor cache (the running registry would serve deleted blobs as empty ones), or,
//! in htpasswd mode, a job that deletes while registry:2 still accepts uploads (a push racing
//! the sweep leaves an image with missing blobs). In token mode the job freezes writes instead:
//! `/token` grants no push or delete, and the job waits until every write token already out has
//! expired. Then: untagged cleanup if asked (token mode, filesystem storage), and
//! `garbage-collect` without `--delete-untagged`.
//!
//! One job at a time per `gc.json`; the running job's live state (its log grows as the command
//! prints) is kept in memory and shown in place of the file's copy ([`jobs`]).
//!
//! Each file holds one concern: the request ([`request`]), the checks before a job may start
//! ([`plan`], [`bin`], [`registry_config`]), the service built once at start that starts jobs
//! and lists them ([`service`], started in `start.rs`), running a job ([`execute`], [`freeze`],
//! [`cleanup`], [`run`]), its audit entry ([`finish`]) and failing jobs a stop interrupted
//! ([`recover`]). `POST /gc` and `GET /gc` are `crate::api::gc`.
//!
//! Cluster mode (`DATABASE_URL`, [`cluster`]): gc.json is a database row, so the one job is one
//! for the whole cluster; the freeze is shared by every replica; a job whose replica died is
//! failed by another; a blob-descriptor cache is accepted only when it is a Redis shared by the
//! registries, which the job purges ([`redis`]) before it thaws.

mod bin;
mod cleanup;
pub mod cluster;
pub mod error;
mod execute;
pub mod finish;
pub mod freeze;
pub mod job;
pub mod jobs;
mod plan;
pub mod prune;
pub mod reach;
pub mod recover;
pub mod redis;
pub mod registry_config;
pub mod request;
pub mod run;
pub mod service;
mod start;
pub mod untagged;

pub use error::GcError;
pub use jobs::Jobs;
pub use recover::recover;
pub use request::StartRequest;
pub use service::{GcService, RUN_TIMEOUT};
pub use start::PROBE_REPOSITORY;
