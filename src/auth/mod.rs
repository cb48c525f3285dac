//! Credentials and roles as extractors: a handler that takes `Admin` can only run for an
//! enabled admin, one that takes `Account` for any enabled account.

pub mod verify;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use base64::Engine;

use crate::AppState;
use crate::audit::api::AuthAttempt;
use crate::error::ApiError;
use crate::users::model::Role;
pub use verify::Account;

/// `(username, password)` from an `Authorization: Basic …` header.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl FromRequest for Account {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Account, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let credentials = basic_credentials(req);
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("app state missing".into()))?;
            let Some((user, password)) = credentials else {
                req.extensions_mut().insert(AuthAttempt(String::new()));
                return Err(ApiError::Unauthorized);
            };
            match state.verifier.verify(&user, &password).await {
                Ok(account) => {
                    req.extensions_mut().insert(account.clone());
                    Ok(account)
                }
                Err(e) => {
                    req.extensions_mut().insert(AuthAttempt(user));
                    Err(e)
                }
            }
        })
    }
}

/// An enabled account with the `admin` role.
pub struct Admin(pub Account);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Admin, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let account = Account::from_request(req, payload);
        Box::pin(async move {
            let account = account.await?;
            if account.role != Role::Admin {
                return Err(ApiError::Forbidden);
            }
            Ok(Admin(account))
        })
    }
}
