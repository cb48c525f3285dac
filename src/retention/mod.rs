//! Retention: which tags to drop, decided by rules people can read (`policy`), from facts the
//! audit already holds (`facts`), computed per repository (`evaluate`) into a plan that changes
//! nothing (`plan`), applied only after a live re-check through the single-tag-safe delete
//! (`apply`), and optionally on a schedule (`schedule`). README: "Keeping the registry small".

pub mod apply;
pub mod error;
pub mod evaluate;
pub mod facts;
pub mod live;
pub mod plan;
pub mod policy;
pub mod schedule;
pub mod store;

use std::sync::Arc;

use chrono::Utc;
use futures_util::stream::{self, StreamExt, TryStreamExt};

pub use error::RetentionError;
pub use facts::Facts;

use self::evaluate::evaluate;
use self::plan::{Plan, PlanStore, RepositoryPlan};
use self::policy::{Compiled, Policies};
use self::store::PolicyStore;
use crate::audit::writer::AuditLog;
use crate::blocking::run_blocking;
use crate::freeze::WriteFreeze;
use crate::grants::Pattern;
use crate::names;
use crate::registry::client::RegistryClient;
use crate::registry::delete::TagDeletes;

/// Repositories evaluated at once while a plan is made.
const REPO_CONCURRENCY: usize = 4;

/// The retention service: policies on disk, the push/pull index, and the plans of the last hour.
pub struct Retention {
    pub store: PolicyStore,
    pub facts: Arc<Facts>,
    pub plans: PlanStore,
}

/// What making and applying a plan talks to.
#[derive(Clone)]
pub struct Services {
    pub registry: Arc<RegistryClient>,
    pub locks: Arc<TagDeletes>,
    pub freeze: Arc<WriteFreeze>,
    pub audit: Arc<AuditLog>,
}

impl Retention {
    pub fn new(store: PolicyStore, facts: Facts, plans: PlanStore) -> Retention {
        Retention {
            store,
            facts: Arc::new(facts),
            plans,
        }
    }

    /// The plan `id`, unless unknown or expired.
    pub async fn plan(self: &Arc<Self>, id: &str) -> Result<Arc<Plan>, RetentionError> {
        let (me, key) = (Arc::clone(self), id.to_string());
        run_blocking(move || me.plans.get(&key))
            .await??
            .ok_or_else(|| RetentionError::PlanNotFound(id.to_string()))
    }

    /// The policies in force. Blocking is done off the async workers.
    pub async fn policies(self: &Arc<Self>) -> Result<(Policies, Compiled), RetentionError> {
        let me = Arc::clone(self);
        run_blocking(move || me.store.current()).await?
    }

    /// Computes and stores a plan over every repository a policy matches (and `only`, when
    /// given, also matches). Reads only: nothing in the registry changes.
    pub async fn make_plan(
        self: &Arc<Self>,
        services: &Services,
        only: Option<Pattern>,
    ) -> Result<Arc<Plan>, RetentionError> {
        if services.freeze.is_frozen() {
            return Err(RetentionError::Maintenance);
        }
        let (_, compiled) = self.policies().await?;
        // Cluster mode: pushes and pulls other replicas received count as well.
        let facts = Arc::clone(&self.facts);
        run_blocking(move || facts.catch_up()).await??;
        let now = Utc::now();
        let mut names_in_scope = Vec::new();
        if !compiled.policies.is_empty() {
            for name in services.registry.catalog().await? {
                if names::repository(&name).is_err()
                    || only.as_ref().is_some_and(|p| !p.matches(&name))
                    || compiled.for_repository(&name).is_empty()
                {
                    continue;
                }
                names_in_scope.push(name);
            }
        }
        let compiled = &compiled;
        let mut repositories: Vec<RepositoryPlan> = stream::iter(names_in_scope)
            .map(|name| async move {
                let Some(state) = live::repository(&services.registry, &name).await? else {
                    return Ok::<_, RetentionError>(None);
                };
                let facts = self.facts.repository(&name);
                let decision = evaluate(
                    &compiled.for_repository(&name),
                    &state,
                    &facts,
                    now.timestamp_millis(),
                );
                Ok(decision.map(|d| RepositoryPlan {
                    name,
                    keep: d.keep,
                    delete: d.delete,
                }))
            })
            .buffer_unordered(REPO_CONCURRENCY)
            .try_filter_map(|r| async move { Ok(r) })
            .try_collect()
            .await?;
        repositories.retain(|r| !r.keep.is_empty() || !r.delete.is_empty());
        repositories.sort_by(|a, b| a.name.cmp(&b.name));
        let plan = Plan::new(only.map(|p| p.as_str().to_string()), repositories, now);
        let me = Arc::clone(self);
        Ok(run_blocking(move || me.plans.insert(plan)).await??)
    }
}
