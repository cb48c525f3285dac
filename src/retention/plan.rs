//! A plan: every tag of every repository a policy matches, kept or to be deleted, with the
//! reason. Plans are kept in memory only, at most `MAX_PLANS` of them and for `PLAN_TTL`: a plan
//! is a review artefact for the next hour, and a restart forgets it (making a new one is cheap
//! and changes nothing).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;

use super::evaluate::Item;
use crate::audit::entry::format_time;
use crate::sync::lock;

/// How long a plan can be read and applied.
pub const PLAN_TTL_SECS: i64 = 3600;
/// Plans held at once; the oldest is forgotten first.
pub const MAX_PLANS: usize = 20;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RepositoryPlan {
    pub name: String,
    pub keep: Vec<Item>,
    pub delete: Vec<Item>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Summary {
    pub repositories: usize,
    pub kept: usize,
    pub delete: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Plan {
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    /// The `repositories` pattern the plan was limited to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only: Option<String>,
    pub repositories: Vec<RepositoryPlan>,
    pub summary: Summary,
    #[serde(skip)]
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

#[derive(Default)]
pub struct PlanStore {
    plans: Mutex<VecDeque<Arc<Plan>>>,
}

impl PlanStore {
    pub fn insert(&self, plan: Plan) -> Arc<Plan> {
        let plan = Arc::new(plan);
        let mut plans = lock(&self.plans);
        let now = Utc::now();
        plans.retain(|p| p.expires > now);
        while plans.len() >= MAX_PLANS {
            plans.pop_front();
        }
        plans.push_back(Arc::clone(&plan));
        plan
    }

    /// The plan, unless unknown or expired.
    pub fn get(&self, id: &str) -> Option<Arc<Plan>> {
        let now = Utc::now();
        lock(&self.plans)
            .iter()
            .find(|p| p.id == id && p.expires > now)
            .cloned()
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
        assert!(store.get(&old.id).is_none(), "expired");
        let first = store.insert(Plan::new(None, vec![], Utc::now()));
        for _ in 0..MAX_PLANS {
            store.insert(Plan::new(None, vec![], Utc::now()));
        }
        assert!(store.get(&first.id).is_none(), "pushed out");
        assert_eq!(lock(&store.plans).len(), MAX_PLANS);
    }
}
