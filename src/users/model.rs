//! Accounts as the API sees them: the htpasswd (what registry:2 enforces) joined with our
//! metadata in `users.json` (role, disabled, creation), and the rules every change obeys.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::htpasswd::Htpasswd;
use crate::names::Role;

/// Who a request is, once authenticated: an account's name and role as they stand now (a robot
/// acts as role `user` under its own name).
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub username: String,
    pub role: Role,
}

/// Account-level decisions (passwords, one's own grants, robots): admins for anyone, others for
/// themselves only.
pub fn is_self_or_admin(account: &Account, user: &str) -> bool {
    account.role == Role::Admin || account.username == user
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserMeta {
    pub role: Role,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub created_by: Option<String>,
    /// The htpasswd hash of a disabled account, put back when it is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_hash: Option<String>,
    /// API tokens carry the epoch they were issued under and die once it moves. Drawn from
    /// one counter for the whole file, so a re-created account never reuses an old epoch.
    #[serde(default)]
    pub token_epoch: u64,
}

/// The content of `users.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub users: BTreeMap<String, UserMeta>,
    /// The last token epoch handed out; only ever grows.
    #[serde(default)]
    pub last_token_epoch: u64,
}

/// A user as the API shows it: never a hash.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<DateTime<Utc>>,
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}

/// Why a change is refused; the store maps these to HTTP through `ApiError`.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    NotFound(String),
    Exists(String),
    LastAdmin(String),
    Protected(String),
}

/// Both files, read together under the lock.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Accounts {
    pub htpasswd: Htpasswd,
    pub meta: Metadata,
}

impl Accounts {
    /// The state of one account. An htpasswd line is authoritative: a user someone added back
    /// by hand is enabled with that password even if our metadata still says disabled.
    pub fn view(&self, user: &str) -> Option<UserView> {
        let meta = self.meta.users.get(user);
        let enabled = self.htpasswd.get(user).is_some();
        let disabled = !enabled && meta.is_some_and(|m| m.disabled && m.kept_hash.is_some());
        if !enabled && !disabled {
            return None;
        }
        Some(UserView {
            username: user.to_string(),
            role: meta.map_or(Role::User, |m| m.role),
            disabled,
            created_at: meta.and_then(|m| m.created_at),
        })
    }

    /// Every account, sorted by name.
    pub fn list(&self) -> Vec<UserView> {
        let mut names: Vec<String> = self.htpasswd.entries().into_keys().collect();
        names.extend(self.meta.users.keys().cloned());
        names.sort();
        names.dedup();
        names.iter().filter_map(|n| self.view(n)).collect()
    }

    pub fn enabled_admins(&self) -> usize {
        self.list()
            .iter()
            .filter(|u| u.role == Role::Admin && !u.disabled)
            .count()
    }

    fn existing(&self, user: &str) -> Result<UserView, Refusal> {
        self.view(user)
            .ok_or_else(|| Refusal::NotFound(user.to_string()))
    }

    /// Looks the account up for a change through the API; the service account is off limits.
    fn changeable(&self, user: &str) -> Result<UserView, Refusal> {
        let view = self.existing(user)?;
        if view.role == Role::Service {
            return Err(Refusal::Protected(user.to_string()));
        }
        Ok(view)
    }

    /// Refuses a change that would leave no enabled admin.
    fn keep_an_admin(&self, view: &UserView, what: &str) -> Result<(), Refusal> {
        if view.role == Role::Admin && !view.disabled && self.enabled_admins() <= 1 {
            return Err(Refusal::LastAdmin(format!(
                "cannot {what} {:?}: it is the last enabled admin",
                view.username
            )));
        }
        Ok(())
    }

    /// Metadata of users that are neither in htpasswd nor disabled is stale (for example left by
    /// a crash between the two writes of a delete); dropping it keeps a later hand-added user of
    /// the same name from inheriting an old role.
    pub fn prune_stale(&mut self) {
        let entries = self.htpasswd.entries();
        self.meta
            .users
            .retain(|name, m| entries.contains_key(name) || (m.disabled && m.kept_hash.is_some()));
    }

    pub fn create(
        &mut self,
        user: &str,
        hash: &str,
        role: Role,
        by: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<UserView, Refusal> {
        if self.view(user).is_some() {
            return Err(Refusal::Exists(user.to_string()));
        }
        self.htpasswd.set(user, hash);
        let token_epoch = self.next_epoch();
        self.meta.users.insert(
            user.to_string(),
            UserMeta {
                role,
                disabled: false,
                created_at: Some(now),
                created_by: by.map(str::to_string),
                kept_hash: None,
                token_epoch,
            },
        );
        self.existing(user)
    }

    pub fn delete(&mut self, user: &str) -> Result<(), Refusal> {
        let view = self.changeable(user)?;
        self.keep_an_admin(&view, "delete")?;
        self.htpasswd.remove(user);
        self.meta.users.remove(user);
        // The counter moves although the account is gone, so a re-creation starts past it.
        self.next_epoch();
        Ok(())
    }

    pub fn set_password(&mut self, user: &str, hash: &str) -> Result<(), Refusal> {
        let view = self.changeable(user)?;
        if view.disabled {
            if let Some(m) = self.meta.users.get_mut(user) {
                m.kept_hash = Some(hash.to_string());
            }
        } else {
            self.htpasswd.set(user, hash);
        }
        self.bump_epoch(user);
        Ok(())
    }

    pub fn disable(&mut self, user: &str) -> Result<UserView, Refusal> {
        let view = self.changeable(user)?;
        if view.disabled {
            return Ok(view);
        }
        self.keep_an_admin(&view, "disable")?;
        let hash = self.htpasswd.remove(user);
        let meta = self.meta_entry(user);
        meta.disabled = true;
        meta.kept_hash = hash;
        self.bump_epoch(user);
        self.existing(user)
    }

    pub fn enable(&mut self, user: &str) -> Result<UserView, Refusal> {
        let view = self.changeable(user)?;
        let meta = self.meta_entry(user);
        meta.disabled = false;
        if let Some(hash) = meta.kept_hash.take()
            && view.disabled
        {
            self.htpasswd.set(user, &hash);
        }
        self.existing(user)
    }

    pub fn set_role(&mut self, user: &str, role: Role) -> Result<UserView, Refusal> {
        let view = self.changeable(user)?;
        if view.role == Role::Admin && role != Role::Admin {
            self.keep_an_admin(&view, "demote")?;
        }
        if view.role != role {
            self.meta_entry(user).role = role;
            self.bump_epoch(user);
        }
        self.existing(user)
    }

    /// Bootstrap: make `user` an enabled admin, creating it with `hash` if it does not exist and
    /// setting its password to `hash` when one is given.
    pub fn ensure_admin(&mut self, user: &str, hash: Option<&str>, now: DateTime<Utc>) {
        let exists = self.view(user).is_some();
        let meta = self.meta_entry(user);
        meta.role = Role::Admin;
        meta.disabled = false;
        if !exists {
            meta.created_at = Some(now);
            meta.created_by = Some("bootstrap".into());
        }
        let kept = meta.kept_hash.take();
        if let Some(hash) = hash.map(str::to_string).or(kept) {
            self.htpasswd.set(user, &hash);
        }
        self.bump_epoch(user);
    }

    /// Installs registry-admin's own account with a fresh hash; refuses to take over a person's.
    pub fn provision_service(
        &mut self,
        user: &str,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        if let Some(view) = self.view(user)
            && view.role != Role::Service
        {
            return Err(Refusal::Exists(user.to_string()));
        }
        self.htpasswd.set(user, hash);
        let meta = self.meta_entry(user);
        meta.role = Role::Service;
        meta.disabled = false;
        meta.kept_hash = None;
        meta.created_at.get_or_insert(now);
        meta.created_by
            .get_or_insert_with(|| "registry-admin".into());
        Ok(())
    }

    /// Removes registry-admin's own account, left from runs without `REGISTRY_USERNAME`: nobody
    /// knows its secret any more. A person's account of that name is left alone.
    pub fn retire_service(&mut self, user: &str) {
        if self.view(user).is_some_and(|v| v.role == Role::Service) {
            self.htpasswd.remove(user);
            self.meta.users.remove(user);
        }
    }

    /// The token epoch of an account: `0` for a line added by hand that has no metadata yet.
    pub fn token_epoch(&self, user: &str) -> u64 {
        self.meta.users.get(user).map_or(0, |m| m.token_epoch)
    }

    /// Ends every API token issued to `user` so far.
    fn bump_epoch(&mut self, user: &str) {
        let next = self.next_epoch();
        self.meta_entry(user).token_epoch = next;
    }

    fn next_epoch(&mut self) -> u64 {
        self.meta.last_token_epoch += 1;
        self.meta.last_token_epoch
    }

    fn meta_entry(&mut self, user: &str) -> &mut UserMeta {
        self.meta.users.entry(user.to_string()).or_insert(UserMeta {
            role: Role::User,
            disabled: false,
            created_at: None,
            created_by: None,
            kept_hash: None,
            token_epoch: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn with_admin() -> Accounts {
        let mut a = Accounts::default();
        a.create("root", "h-root", Role::Admin, None, now())
            .unwrap();
        a
    }

    #[test]
    fn hand_added_users_are_plain_users() {
        let a = Accounts {
            htpasswd: Htpasswd::parse("bob:h\n").unwrap(),
            meta: Metadata::default(),
        };
        let v = a.view("bob").unwrap();
        assert_eq!(
            (v.role, v.disabled, v.created_at),
            (Role::User, false, None)
        );
    }

    #[test]
    fn disable_keeps_the_hash_and_enable_restores_it() {
        let mut a = with_admin();
        a.create("al", "h-al", Role::User, Some("root"), now())
            .unwrap();
        assert!(a.disable("al").unwrap().disabled);
        assert_eq!(a.htpasswd.get("al"), None);
        a.set_password("al", "h-new").unwrap();
        assert!(!a.enable("al").unwrap().disabled);
        assert_eq!(a.htpasswd.get("al"), Some("h-new"));
    }

    #[test]
    fn the_last_enabled_admin_is_kept() {
        let mut a = with_admin();
        assert!(matches!(a.delete("root"), Err(Refusal::LastAdmin(_))));
        assert!(matches!(a.disable("root"), Err(Refusal::LastAdmin(_))));
        assert!(matches!(
            a.set_role("root", Role::User),
            Err(Refusal::LastAdmin(_))
        ));
        a.create("second", "h", Role::Admin, None, now()).unwrap();
        a.disable("second").unwrap();
        assert!(
            matches!(a.delete("root"), Err(Refusal::LastAdmin(_))),
            "a disabled admin does not count"
        );
        a.enable("second").unwrap();
        a.delete("root").unwrap();
        assert_eq!(a.enabled_admins(), 1);
    }

    #[test]
    fn service_account_is_protected() {
        let mut a = with_admin();
        a.provision_service("registry-admin", "h", now()).unwrap();
        for r in [
            a.delete("registry-admin").err(),
            a.disable("registry-admin").err(),
            a.enable("registry-admin").err(),
            a.set_role("registry-admin", Role::Admin).err(),
            a.set_password("registry-admin", "x").err(),
        ] {
            assert_eq!(r, Some(Refusal::Protected("registry-admin".into())));
        }
        a.create("person", "h", Role::User, None, now()).unwrap();
        assert!(a.provision_service("person", "h", now()).is_err());
        a.retire_service("person");
        assert!(a.view("person").is_some(), "a person is never retired");
        a.retire_service("registry-admin");
        assert!(a.view("registry-admin").is_none() && a.htpasswd.get("registry-admin").is_none());
    }

    #[test]
    fn hand_restored_line_wins_over_disabled_metadata() {
        let mut a = with_admin();
        a.create("al", "h-al", Role::User, None, now()).unwrap();
        a.disable("al").unwrap();
        a.htpasswd.set("al", "by-hand");
        assert!(!a.view("al").unwrap().disabled);
    }

    #[test]
    fn stale_metadata_is_pruned() {
        let mut a = with_admin();
        a.meta.users.insert(
            "ghost".into(),
            UserMeta {
                role: Role::Admin,
                disabled: false,
                created_at: None,
                created_by: None,
                kept_hash: None,
                token_epoch: 0,
            },
        );
        assert!(a.view("ghost").is_none());
        a.prune_stale();
        assert!(!a.meta.users.contains_key("ghost"));
        assert!(a.meta.users.contains_key("root"));
    }

    #[test]
    fn every_change_that_ends_tokens_moves_the_epoch_and_it_never_comes_back() {
        let mut a = with_admin();
        a.create("al", "h", Role::User, None, now()).unwrap();
        let mut seen = vec![a.token_epoch("al")];
        let step = |a: &Accounts, seen: &mut Vec<u64>| {
            let e = a.token_epoch("al");
            assert!(!seen.contains(&e), "epoch {e} was used before: {seen:?}");
            seen.push(e);
        };
        a.disable("al").unwrap();
        step(&a, &mut seen);
        a.enable("al").unwrap();
        assert_eq!(
            a.token_epoch("al"),
            *seen.last().unwrap(),
            "enable alone ends nothing"
        );
        a.set_role("al", Role::Admin).unwrap();
        step(&a, &mut seen);
        a.set_role("al", Role::User).unwrap();
        step(&a, &mut seen);
        a.set_password("al", "h").unwrap();
        step(&a, &mut seen);
        a.delete("al").unwrap();
        a.create("al", "h", Role::User, None, now()).unwrap();
        step(&a, &mut seen);
    }

    #[test]
    fn bootstrap_promotes_and_enables() {
        let mut a = with_admin();
        a.create("boss", "h", Role::User, None, now()).unwrap();
        a.disable("boss").unwrap();
        a.ensure_admin("boss", None, now());
        let v = a.view("boss").unwrap();
        assert_eq!((v.role, v.disabled), (Role::Admin, false));
        assert_eq!(a.htpasswd.get("boss"), Some("h"));
        a.ensure_admin("boss", Some("new"), now());
        assert_eq!(a.htpasswd.get("boss"), Some("new"));
    }
}
