//! The rules for usernames, passwords and roles, applied to bodies and paths alike.

use thiserror::Error;

use crate::error::{ErrorCode, StatusCode};
use crate::names::{self, InvalidUsername, Role};

#[derive(Debug, Error, PartialEq)]
pub enum InvalidInput {
    #[error("{0}")]
    Username(String),
    #[error("{0}")]
    Password(String),
    #[error("{0}")]
    Role(String),
}

impl ErrorCode for InvalidInput {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
    fn code(&self) -> &'static str {
        match self {
            InvalidInput::Username(_) => "invalid_username",
            InvalidInput::Password(_) => "invalid_password",
            InvalidInput::Role(_) => "invalid_request",
        }
    }
}

pub const MIN_PASSWORD_BYTES: usize = 8;
/// bcrypt reads no further; a longer password is refused rather than silently truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The username rules of [`crate::names::username`], answered as this module's error.
pub fn username(name: &str) -> Result<(), InvalidInput> {
    names::username(name).map_err(|InvalidUsername(why)| InvalidInput::Username(why))
}

pub fn password(pw: &str) -> Result<(), InvalidInput> {
    let fail = |why: String| Err(InvalidInput::Password(format!("invalid password: {why}")));
    if pw.len() < MIN_PASSWORD_BYTES {
        return fail(format!("it must be at least {MIN_PASSWORD_BYTES} bytes"));
    }
    if pw.len() > MAX_PASSWORD_BYTES {
        return fail(format!(
            "it must be at most {MAX_PASSWORD_BYTES} bytes (bcrypt ignores the rest)"
        ));
    }
    if pw.contains(['\0', '\n', '\r']) {
        return fail("it must not contain NUL or line breaks".into());
    }
    Ok(())
}

/// Roles a client may assign; `service` belongs to registry-admin's own account only.
pub fn assignable_role(role: &str) -> Result<Role, InvalidInput> {
    match role {
        "admin" => Ok(Role::Admin),
        "user" => Ok(Role::User),
        other => Err(InvalidInput::Role(format!(
            "invalid role {other:?}: use \"admin\" or \"user\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        assert!(password("12345678").is_ok());
        assert!(password(&"p".repeat(72)).is_ok());
        for bad in [
            "1234567",
            &"p".repeat(73),
            "abcdefgh\n",
            "abcdefgh\0",
            "abc\rdefgh",
        ] {
            assert!(password(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles() {
        assert_eq!(assignable_role("admin"), Ok(Role::Admin));
        assert_eq!(assignable_role("user"), Ok(Role::User));
        assert!(assignable_role("service").is_err());
        assert!(assignable_role("Admin").is_err());
    }
}
