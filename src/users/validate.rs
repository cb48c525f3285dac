//! The rules for usernames, passwords and roles, applied to bodies and paths alike.

use thiserror::Error;

use super::model::Role;
use crate::error::{ErrorCode, StatusCode};

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

pub const MAX_USERNAME_CHARS: usize = 64;
pub const MIN_PASSWORD_BYTES: usize = 8;
/// bcrypt reads no further; a longer password is refused rather than silently truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;

pub fn username(name: &str) -> Result<(), InvalidInput> {
    let fail = |why: &str| Err(InvalidInput::Username(format!("invalid username: {why}")));
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > MAX_USERNAME_CHARS {
        return fail("it is longer than 64 characters");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')))
    {
        return fail(&format!(
            "{c:?} is not allowed (use letters, digits, '.', '_', '@', '-')"
        ));
    }
    if name.starts_with('-') || name.starts_with('.') {
        return fail("it must not start with '-' or '.'");
    }
    Ok(())
}

/// A username that passed [`username`]: what handlers take instead of a raw path segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(value: impl Into<String>) -> Result<Username, InvalidInput> {
        let value = value.into();
        username(&value)?;
        Ok(Username(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Username {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
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
    fn a_username_holds_only_a_valid_name() {
        assert_eq!(Username::parse("alice").unwrap().as_str(), "alice");
        assert!(Username::parse("-x").is_err() && Username::parse("a:b").is_err());
    }

    #[test]
    fn usernames() {
        for ok in ["a", "alice", "a.b_c@d-e", "A9", &"x".repeat(64)] {
            assert_eq!(username(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a:b",
            "a\nb",
            "a\0b",
            "a b",
            "é",
            "-a",
            ".a",
            "a/b",
            "..%2Fadmin",
            &"x".repeat(65),
        ] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
    }

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
