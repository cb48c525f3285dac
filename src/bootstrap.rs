//! Start-up work on the accounts: the bootstrap admin and the account used toward registry:2.

use chrono::Utc;
use rand::RngCore;
use thiserror::Error;

use crate::config::{AuthMode, Config};
use crate::names::Role;
use crate::users::htpasswd::bcrypt_hash as hash;
use crate::users::store::{StoreError, UserStore};

/// The account registry-admin provisions for itself when `REGISTRY_USERNAME` is unset.
pub const SERVICE_ACCOUNT: &str = "registry-admin";
/// registry:2 runs bcrypt on every request; the secret's 256 bits are the protection here.
const SERVICE_COST: u32 = 4;

#[derive(Debug, Error)]
pub enum BootstrapError {
    #[error(
        "an account named {0:?} exists and is not registry-admin's service account; rename it or set REGISTRY_USERNAME and REGISTRY_PASSWORD"
    )]
    ServiceNameTaken(String),
    #[error("ADMIN_USERNAME: {0:?} is reserved for registry-admin's service account")]
    AdminIsService(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
}

fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Makes sure registry:2 will accept registry-admin and returns the credentials to use.
pub fn registry_credentials(
    config: &Config,
    store: &UserStore,
) -> Result<(String, String), BootstrapError> {
    if let Some(given) = &config.registry_credentials {
        let leftover = store
            .current()?
            .view(SERVICE_ACCOUNT)
            .is_some_and(|v| v.role == Role::Service);
        if leftover {
            store.modify(|a| {
                a.retire_service(SERVICE_ACCOUNT);
                Ok(())
            })?;
        }
        return Ok(given.clone());
    }
    if config.admin_username == SERVICE_ACCOUNT {
        return Err(BootstrapError::AdminIsService(SERVICE_ACCOUNT.into()));
    }
    let secret = random_secret(32);
    let hashed = hash(&secret, SERVICE_COST)?;
    store
        .modify(|a| a.provision_service(SERVICE_ACCOUNT, &hashed, Utc::now()))
        .map_err(|e| match e {
            StoreError::Exists(u) => BootstrapError::ServiceNameTaken(u),
            other => other.into(),
        })?;
    Ok((SERVICE_ACCOUNT.to_string(), secret))
}

/// What token-mode start-up found about the name `registry-admin`.
#[derive(Debug, PartialEq)]
pub enum ServiceName {
    /// Nothing holds it (a left-over service line, if any, is gone now).
    Free,
    /// A person's account of that name: left alone, but `/token` never issues to it.
    HeldByAccount,
}

/// Token mode: registry-admin signs its own tokens (subject `registry-admin`), so it needs no
/// htpasswd line, and a service line left from an htpasswd-mode run is removed: nobody knows
/// its secret any more, and registry:2 no longer reads the file.
pub fn retire_service_account(
    config: &Config,
    store: &UserStore,
) -> Result<ServiceName, BootstrapError> {
    if config.admin_username == SERVICE_ACCOUNT {
        return Err(BootstrapError::AdminIsService(SERVICE_ACCOUNT.into()));
    }
    let role = store.current()?.view(SERVICE_ACCOUNT).map(|v| v.role);
    match role {
        None => Ok(ServiceName::Free),
        Some(Role::Service) => {
            store.modify(|a| {
                a.retire_service(SERVICE_ACCOUNT);
                Ok(())
            })?;
            Ok(ServiceName::Free)
        }
        Some(_) => Ok(ServiceName::HeldByAccount),
    }
}

/// What start-up did about the admin account, for the one message it prints.
#[derive(Debug, PartialEq)]
pub enum AdminOutcome {
    /// An enabled admin exists; the settings were not used.
    Present,
    /// The account was created, enabled or promoted; `generated` holds a password made up here.
    Ensured {
        username: String,
        generated: Option<String>,
    },
}

/// If no enabled admin exists, creates `ADMIN_USERNAME`, or enables and promotes it, setting its
/// password to `ADMIN_PASSWORD` when one is given (the recovery path).
pub fn ensure_admin(config: &Config, store: &UserStore) -> Result<AdminOutcome, BootstrapError> {
    let accounts = store.current()?;
    if accounts.enabled_admins() > 0 {
        return Ok(AdminOutcome::Present);
    }
    let user = config.admin_username.clone();
    if accounts
        .view(&user)
        .is_some_and(|v| v.role == Role::Service)
    {
        return Err(BootstrapError::AdminIsService(user));
    }
    let has_password = accounts.htpasswd.get(&user).is_some()
        || accounts
            .meta
            .users
            .get(&user)
            .is_some_and(|m| m.kept_hash.is_some());
    let (password, generated) = match &config.admin_password {
        Some(p) => (Some(p.clone()), None),
        None if has_password => (None, None),
        None => {
            let p = random_secret(12);
            (Some(p.clone()), Some(p))
        }
    };
    let hashed = password.map(|p| hash(&p, config.bcrypt_cost)).transpose()?;
    store.modify(|a| {
        a.ensure_admin(&user, hashed.as_deref(), Utc::now());
        Ok(())
    })?;
    Ok(AdminOutcome::Ensured {
        username: user,
        generated,
    })
}

/// The registry account registry-admin itself acts as toward registry:2. Its own requests
/// (digest lookups, deletes) come back as events that are nobody's action, and are recognised by
/// this actor alone: a `User-Agent` is whatever the client chose to send. In token mode the
/// subject of registry-admin's own tokens is the same `registry-admin`.
pub fn own_registry_account(config: &Config) -> &str {
    match config.auth_mode {
        // REGISTRY_USERNAME is ignored there: registry-admin's tokens always name itself.
        AuthMode::Token => SERVICE_ACCOUNT,
        AuthMode::Htpasswd => config
            .registry_credentials
            .as_ref()
            .map_or(SERVICE_ACCOUNT, |(user, _)| user.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_account_is_the_configured_one_or_the_service_account() {
        let mut c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(own_registry_account(&c), "registry-admin");
        c.registry_credentials = Some(("svc".into(), "pw".into()));
        assert_eq!(own_registry_account(&c), "svc");
        c.auth_mode = AuthMode::Token;
        assert_eq!(
            own_registry_account(&c),
            "registry-admin",
            "token mode ignores REGISTRY_USERNAME"
        );
    }
}
