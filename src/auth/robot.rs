//! A robot's HTTP Basic credentials, checked for the throttled authentication path of this
//! module: the decision is `crate::robots::caller`; here a success records `last_used_at` at
//! most once a minute, and an expired robot's first refusal is audited `robot.expired`.

use std::sync::Arc;

use actix_web::{HttpRequest, web};
use chrono::{DateTime, Duration, Utc};

use super::{Account, AuthError};
use crate::audit::entry::{Entry, Outcome, Source};
use crate::audit::writer::AuditLog;
use crate::config::{AuthMode, Config};
use crate::directory::Directory;
use crate::names::Role;
use crate::net::ClientAddresses;
use crate::robots::RobotCaller;
use crate::robots::caller::{Refusal, decide};
use crate::robots::model::split_name;
use crate::users::store::StoreError;

/// `last_used_at` is written at most this often per robot.
const LAST_USED_EVERY: Duration = Duration::seconds(60);

fn data<T: 'static>(req: &HttpRequest) -> Result<web::Data<T>, AuthError> {
    req.app_data::<web::Data<T>>()
        .cloned()
        .ok_or(AuthError::Rejected)
}

/// Checks `name:given`; `Rejected` for anything but a usable robot with that secret. Called
/// with a throttle slot taken.
pub async fn verify(
    req: &HttpRequest,
    name: &str,
    given: &str,
) -> Result<(Account, RobotCaller), AuthError> {
    let config = data::<Config>(req)?;
    // htpasswd mode: registry:2 could not hold a robot to its grants, so robots do not exist.
    if config.auth_mode != AuthMode::Token || split_name(name).is_none() {
        return Err(AuthError::Rejected);
    }
    let directory = data::<Directory>(req)?.into_inner();
    let (robots_store, users) = (&directory.robots, &directory.users);
    let robots = robots_store.current().map_err(StoreError::from)?;
    let accounts = users.current()?;
    let now = Utc::now();
    match decide(&robots, &accounts, name, given, now) {
        Ok(caller) => {
            let stale = robots
                .get(name)
                .is_none_or(|r| r.last_used_at.is_none_or(|t| now - t >= LAST_USED_EVERY));
            if stale && robots_store.claim_touch(name, now, LAST_USED_EVERY) {
                touch(&directory, name, now).await;
            }
            let account = Account {
                username: caller.name.clone(),
                role: Role::User,
            };
            Ok((account, caller))
        }
        Err(Refusal::Expired { reported: false }) => {
            report_expired(req, &directory, name, now).await;
            Err(AuthError::Rejected)
        }
        Err(_) => Err(AuthError::Rejected),
    }
}

/// Sets `last_used_at`; a failure is logged, never the request's failure.
async fn touch(directory: &Arc<Directory>, name: &str, now: DateTime<Utc>) {
    let done = directory.touch_robot(name.to_string(), now).await;
    if let Err(e) = done {
        let e = crate::error::ApiError::from(e);
        log::warn!("could not record a robot's last use: {e}");
    }
}

/// Marks the expiry as reported under the lock and, if this request was the first, writes
/// `robot.expired`.
async fn report_expired(
    req: &HttpRequest,
    directory: &Arc<Directory>,
    name: &str,
    now: DateTime<Utc>,
) {
    let first = directory.report_robot_expired(name.to_string(), now).await;
    let first = match first {
        Ok(first) => first,
        Err(e) => {
            let e = crate::error::ApiError::from(e);
            log::warn!("could not record a robot's expiry: {e}");
            false
        }
    };
    if !first {
        return;
    }
    let Some(audit) = req.app_data::<web::Data<AuditLog>>() else {
        return;
    };
    let expired_at = directory
        .robots
        .current()
        .ok()
        .and_then(|all| all.get(name).and_then(|r| r.expires_at))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let mut entry = Entry::new("robot.expired", name, Outcome::Denied, Source::Api);
    entry.user = Some(name.to_string());
    entry.status = Some(401);
    entry.request_id = crate::request_id::of(req);
    entry.remote_addr = req
        .app_data::<web::Data<ClientAddresses>>()
        .map(|a| a.client_ip(req).to_string());
    entry.detail = Some(format!("refused: the robot expired at {expired_at}"));
    if let Err(e) = audit.record(entry).await {
        log::error!("could not write robot.expired for {name}: {e}");
    }
}
