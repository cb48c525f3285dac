//! A plan: every tag of every repository a policy matches, kept or to be deleted, with the
//! reason. A plan is a review artefact for the next hour (`PLAN_TTL_SECS`), at most `MAX_PLANS`
//! of them: in files mode kept in memory only, so a restart forgets it (making a new one is
//! cheap and changes nothing); in cluster mode kept in the database, so any replica can show
//! and apply a plan another one made.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::evaluate::Item;
use crate::audit::entry::format_time;
use crate::store::{Database, DatabaseError};
use crate::sync::lock;

/// How long a plan can be read and applied.
pub const PLAN_TTL_SECS: i64 = 3600;
/// Plans held at once; the oldest is forgotten first.
pub const MAX_PLANS: usize = 20;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepositoryPlan {
    pub name: String,
    pub keep: Vec<Item>,
    pub delete: Vec<Item>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    pub repositories: usize,
    pub kept: usize,
    pub delete: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    /// The `repositories` pattern the plan was limited to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only: Option<String>,
    pub repositories: Vec<RepositoryPlan>,
    pub summary: Summary,
    #[serde(skip, default = "Utc::now")]
    pub expires: DateTime<Utc>,
}

impl Plan {
    pub fn new(
        only: Option<String>,
        repositories: Vec<RepositoryPlan>,
        now: DateTime<Utc>,
    ) -> Plan {
        let mut b = [0u8; 12];
        rand::rng().fill_bytes(&mut b);
        let expires = now + Duration::seconds(PLAN_TTL_SECS);
        let summary = Summary {
            repositories: repositories.len(),
            kept: repositories.iter().map(|r| r.keep.len()).sum(),
            delete: repositories.iter().map(|r| r.delete.len()).sum(),
        };
        Plan {
            id: hex::encode(b),
            created_at: format_time(now),
            expires_at: format_time(expires),
            only,
            repositories,
            summary,
            expires,
        }
    }
}

/// Where plans are kept: this process's memory, or the cluster's database.
pub enum PlanStore {
    Memory(Mutex<VecDeque<Arc<Plan>>>),
    Database(Arc<Database>),
}

impl Default for PlanStore {
    fn default() -> Self {
        PlanStore::Memory(Mutex::default())
    }
}

impl PlanStore {
    /// Keeps `plan`, forgetting expired ones and the oldest beyond [`MAX_PLANS`]. Blocking in
    /// cluster mode.
    pub fn insert(&self, plan: Plan) -> Result<Arc<Plan>, DatabaseError> {
        let plan = Arc::new(plan);
        match self {
            PlanStore::Memory(plans) => {
                let mut plans = lock(plans);
                let now = Utc::now();
                plans.retain(|p| p.expires > now);
                while plans.len() >= MAX_PLANS {
                    plans.pop_front();
                }
                plans.push_back(Arc::clone(&plan));
            }
            PlanStore::Database(db) => {
                let body = serde_json::to_string(plan.as_ref())
                    .map_err(|e| DatabaseError(format!("plan not serialisable: {e}")))?;
                let mut conn = db.connection()?;
                let mut tx = conn.transaction()?;
                tx.execute("DELETE FROM retention_plans WHERE expires_at <= now()", &[])?;
                tx.execute(
                    "INSERT INTO retention_plans (id, body, expires_at) VALUES ($1, $2, $3)",
                    &[&plan.id, &body, &plan.expires],
                )?;
                // Oldest first beyond the cap, as in memory.
                tx.execute(
                    "DELETE FROM retention_plans WHERE id IN (
                         SELECT id FROM retention_plans ORDER BY created_at DESC, id OFFSET $1)",
                    &[&(MAX_PLANS as i64)],
                )?;
                tx.commit()?;
            }
        }
        Ok(plan)
    }

    /// The plan, unless unknown or expired. Blocking in cluster mode.
    pub fn get(&self, id: &str) -> Result<Option<Arc<Plan>>, DatabaseError> {
        let now = Utc::now();
        match self {
            PlanStore::Memory(plans) => Ok(lock(plans)
                .iter()
                .find(|p| p.id == id && p.expires > now)
                .cloned()),
            PlanStore::Database(db) => {
                let row = db.connection()?.query_opt(
                    "SELECT body, expires_at FROM retention_plans WHERE id = $1 AND expires_at > now()",
                    &[&id],
                )?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let body: String = row.get(0);
                let mut plan: Plan = serde_json::from_str(&body)
                    .map_err(|e| DatabaseError(format!("stored plan {id:?} unreadable: {e}")))?;
                plan.expires = row.get(1);
                Ok(Some(Arc::new(plan)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_expire_and_the_oldest_goes_first() {
        let store = PlanStore::default();
        let old = store.insert(Plan::new(
            None,
            vec![],
            Utc::now() - Duration::seconds(PLAN_TTL_SECS + 1),
        ));
        let old = old.unwrap();
        assert!(store.get(&old.id).unwrap().is_none(), "expired");
        let first = store.insert(Plan::new(None, vec![], Utc::now())).unwrap();
        for _ in 0..MAX_PLANS {
            store.insert(Plan::new(None, vec![], Utc::now())).unwrap();
        }
        assert!(store.get(&first.id).unwrap().is_none(), "pushed out");
        let PlanStore::Memory(plans) = &store else {
            unreachable!()
        };
        assert_eq!(lock(plans).len(), MAX_PLANS);
    }
}
