//! `reset-password USER [--admin]`: the way back in when every admin password is lost. It goes
//! through `UserStore::modify` (the service's lock, atomic replace with an mtime bump), so
//! registry:2 and a running service see the new password at once. In cluster mode it changes the
//! account in the database, audited in the database's chain.

use std::io::{self, BufRead, Read};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use rand::distr::Alphanumeric;

use registry_admin::audit::entry::{Entry, Outcome, Source};
use registry_admin::bootstrap::SERVICE_ACCOUNT;
use registry_admin::names::Role;
use registry_admin::robots::ROBOT_PREFIX;
use registry_admin::users::htpasswd::bcrypt_hash;
use registry_admin::users::model::{Accounts, Refusal};
use registry_admin::users::store::{StoreError, UserStore};
use registry_admin::validate;

use super::{CliError, audit_of, os_actor, settings};

/// Longest first line read from stdin; far above the longest valid password, so a longer line
/// is refused as too long by the password rules rather than cut.
const MAX_LINE_BYTES: u64 = 4096;
/// A pipe that never delivers a line must not hang the command.
const STDIN_TIMEOUT: Duration = Duration::from_secs(30);
const GENERATED_CHARS: usize = 24;

/// What the change did, for the audit trail and the message.
#[derive(Debug, Default, PartialEq)]
struct Reset {
    created: bool,
    enabled: bool,
    promoted: bool,
    role: Option<Role>,
}

pub fn run(user: &str, admin: bool, from_terminal: bool) -> Result<ExitCode, CliError> {
    let mut names = vec!["HTPASSWD_PATH", "BCRYPT_COST"];
    names.extend_from_slice(audit_of::SETTINGS);
    let config = settings(&names)?;
    validate::username(user).map_err(|e| CliError::Refused(e.to_string()))?;
    // As `POST /users` refuses them: a robot has a secret, not a password, and an htpasswd line
    // for it would let it past its grants and expiry wherever registry:2 reads htpasswd.
    if user.starts_with(ROBOT_PREFIX) {
        return Err(CliError::Refused(format!(
            "usernames starting with {ROBOT_PREFIX:?} are reserved for robot accounts; a robot gets a new secret with POST /robots/{{robot}}/rotate"
        )));
    }
    if user == SERVICE_ACCOUNT || std::env::var("REGISTRY_USERNAME").is_ok_and(|u| u == user) {
        return Err(CliError::Refused(format!(
            "{user:?} is the account registry-admin uses toward registry:2; it cannot be reset"
        )));
    }
    let (password, generated) = if from_terminal {
        (generate(), true)
    } else {
        (read_password(io::stdin(), STDIN_TIMEOUT)?, false)
    };
    validate::password(&password).map_err(|e| CliError::Refused(e.to_string()))?;
    let hash = bcrypt_hash(&password, config.bcrypt_cost)?;
    // As the API does (503 `audit_unavailable`): no change the audit trail could not record.
    // In cluster mode the accounts and the chain are the database's, as for the service.
    let db = audit_of::database(&config)?;
    let audit = audit_of::source(&config, db.as_ref());
    audit.reserve().map_err(|e| {
        CliError::Refused(format!(
            "nothing was changed: the audit log cannot take this change's entry ({e})"
        ))
    })?;

    let store = match db {
        Some(db) => UserStore::in_database(db),
        None => UserStore::new(&config.htpasswd_path),
    };
    let done = store
        .modify(|a| apply(a, user, &hash, admin))
        .map_err(|e| match e {
            StoreError::Protected(u) => CliError::Refused(format!(
                "{u:?} is registry-admin's service account; it cannot be reset"
            )),
            other => other.into(),
        })?;

    let entries = audit_entries(&done, user, &os_actor());
    let audited = audit.append(&entries);

    if generated {
        eprintln!("registry-admin: new password for {user:?} (shown once):");
        println!("{password}");
    }
    eprintln!("registry-admin: {}", describe(&done, user));
    if let Err(e) = audited {
        // Only if the log broke between the reservation and the append (its volume removed,
        // say): the change is made and cannot be taken back; say plainly that the trail lacks it.
        eprintln!("registry-admin: the change is made, but its audit entry was not written: {e}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn generate() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(GENERATED_CHARS)
        .map(char::from)
        .collect()
}

/// The first line of `input` without its line ending, read on a thread so that a silent pipe
/// ends in an error after `timeout` instead of a hang.
fn read_password<R: Read + Send + 'static>(
    input: R,
    timeout: Duration,
) -> Result<String, CliError> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(first_line(io::BufReader::new(input)));
    });
    match rx.recv_timeout(timeout) {
        Ok(line) => line,
        Err(_) => Err(CliError::Refused(format!(
            "no password arrived on stdin within {}s",
            timeout.as_secs()
        ))),
    }
}

fn first_line(input: impl BufRead) -> Result<String, CliError> {
    let mut line = Vec::new();
    input
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', &mut line)
        .map_err(|e| CliError::Refused(format!("reading stdin: {e}")))?;
    if line.is_empty() {
        return Err(CliError::Refused(
            "stdin is empty: give the new password as its first line, e.g. \
             printf '%s\\n' \"$PASSWORD\" | registry-admin reset-password USER"
                .into(),
        ));
    }
    if line.ends_with(b"\n") {
        line.pop();
        if line.ends_with(b"\r") {
            line.pop();
        }
    } else if line.len() as u64 >= MAX_LINE_BYTES {
        return Err(CliError::Refused(format!(
            "the first line of stdin is longer than {MAX_LINE_BYTES} bytes"
        )));
    }
    String::from_utf8(line)
        .map_err(|_| CliError::Refused("the password on stdin is not UTF-8".into()))
}

/// Sets the password through the `Accounts` methods (each of which keeps its own invariants),
/// enabling, creating or promoting the account as needed.
fn apply(a: &mut Accounts, user: &str, hash: &str, admin: bool) -> Result<Reset, Refusal> {
    let Some(view) = a.view(user) else {
        let role = if admin { Role::Admin } else { Role::User };
        a.create(user, hash, role, Some("cli"), Utc::now())?;
        return Ok(Reset {
            created: true,
            role: Some(role),
            ..Reset::default()
        });
    };
    if view.role == Role::Service {
        return Err(Refusal::Protected(user.to_string()));
    }
    a.set_password(user, hash)?;
    if view.disabled {
        a.enable(user)?;
    }
    let promoted = admin && view.role != Role::Admin;
    if promoted {
        a.set_role(user, Role::Admin)?;
    }
    Ok(Reset {
        created: false,
        enabled: view.disabled,
        promoted,
        role: promoted.then_some(Role::Admin),
    })
}

/// One entry per kind of change, as the API writes them, marked `source: cli`.
fn audit_entries(done: &Reset, user: &str, actor: &str) -> Vec<Entry> {
    let entry = |action: &str, detail: Option<String>| {
        let mut e = Entry::new(action, actor, Outcome::Success, Source::Cli);
        e.user = Some(user.to_string());
        e.detail = detail;
        e
    };
    let role_detail = done.role.map(|r| format!("role {}", r.as_str()));
    if done.created {
        return vec![entry("user.create", role_detail)];
    }
    let mut out = vec![entry("user.password", Some("reset-password".into()))];
    if done.enabled {
        out.push(entry("user.enable", None));
    }
    if done.promoted {
        out.push(entry("user.role", role_detail));
    }
    out
}

fn describe(done: &Reset, user: &str) -> String {
    if done.created {
        let role = done.role.map_or("user", Role::as_str);
        return format!("{user:?} did not exist: created it with role {role} and the new password");
    }
    let mut s = format!("password of {user:?} reset");
    if done.enabled {
        s.push_str("; the account was disabled and is enabled again");
    }
    if done.promoted {
        s.push_str("; it is now an admin");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(input: &[u8]) -> Result<String, String> {
        first_line(input).map_err(|e| e.to_string())
    }

    #[test]
    fn the_line_ending_is_not_part_of_the_password() {
        assert_eq!(line(b"s3cret-pass\n").unwrap(), "s3cret-pass");
        assert_eq!(line(b"s3cret-pass\r\n").unwrap(), "s3cret-pass");
        assert_eq!(line(b"s3cret-pass").unwrap(), "s3cret-pass");
        assert_eq!(line(b"first-line\nsecond\n").unwrap(), "first-line");
        assert_eq!(line(b" spaced out \n").unwrap(), " spaced out ");
        assert!(line(b"").unwrap_err().contains("stdin is empty"));
        let long = vec![b'x'; MAX_LINE_BYTES as usize + 10];
        assert!(line(&long).unwrap_err().contains("longer than"));
    }

    #[test]
    fn a_pipe_that_never_writes_times_out() {
        let (reader, _writer) = std::io::pipe().unwrap();
        let err = read_password(reader, Duration::from_millis(50)).unwrap_err();
        assert!(err.to_string().contains("no password arrived"), "{err}");
    }

    #[test]
    fn a_disabled_user_is_enabled_and_promoted() {
        let mut a = Accounts::default();
        a.create("root", "h-root", Role::Admin, None, Utc::now())
            .unwrap();
        a.create("al", "h-al", Role::User, None, Utc::now())
            .unwrap();
        a.disable("al").unwrap();
        let done = apply(&mut a, "al", "h-new", true).unwrap();
        assert_eq!(
            done,
            Reset {
                created: false,
                enabled: true,
                promoted: true,
                role: Some(Role::Admin)
            }
        );
        let v = a.view("al").unwrap();
        assert_eq!((v.role, v.disabled), (Role::Admin, false));
        assert_eq!(a.htpasswd.get("al"), Some("h-new"));
        let actions: Vec<String> = audit_entries(&done, "al", "ops")
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, ["user.password", "user.enable", "user.role"]);
    }

    #[test]
    fn a_missing_user_is_created_and_the_service_account_refused() {
        let mut a = Accounts::default();
        let done = apply(&mut a, "ops", "h", false).unwrap();
        assert!(done.created);
        assert_eq!(a.view("ops").unwrap().role, Role::User);
        a.provision_service("registry-admin", "h", Utc::now())
            .unwrap();
        assert_eq!(
            apply(&mut a, "registry-admin", "h2", true),
            Err(Refusal::Protected("registry-admin".into()))
        );
    }
}
