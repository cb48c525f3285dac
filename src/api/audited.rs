//! A route's audit action, declared where the route is registered:
//!
//! ```text
//! web::resource("/users/{user}").route(web::delete().to(delete).wrap(Audited::change("user.delete")))
//! ```
//!
//! The route's wrapper puts the action in the request's extensions before the handler (and its
//! extractors) run; the audit middleware (`audit_middleware.rs`) reads it there once the response is known.
//! It also reserves room for a change's entry, then applies the write guard
//! (`crate::write_guard`), in that order.
//! A route without one is not audited by the middleware: reads, unknown paths (404), methods a
//! path does not take (405), and `/events`, which writes its own entries.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpMessage, ResponseError, web};

use crate::audit::writer::AuditLog;
use crate::error::ApiError;

/// The action an audit entry names (`user.delete`), as its route declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditAction(pub &'static str);

/// Route middleware that declares the route's audit action.
#[derive(Debug, Clone, Copy)]
pub struct Audited {
    action: &'static str,
    /// Whether room for the entry is reserved before the handler runs. An action that cannot
    /// be audited must not happen, so a change is refused (503 `audit_unavailable`, nothing
    /// changed) when the audit log cannot take its entry.
    reserve: bool,
}

impl Audited {
    /// A route that changes state: audited as `action`, and refused before anything changes
    /// when its entry could not be written (see `AuditLog::reserve`).
    pub const fn change(action: &'static str) -> Self {
        Audited {
            action,
            reserve: true,
        }
    }

    /// A route that changes nothing here but is audited as `action` (logging in, issuing a
    /// registry token): it is answered even when the audit log cannot be written, so that a
    /// failed login is still refused as such.
    pub const fn no_change(action: &'static str) -> Self {
        Audited {
            action,
            reserve: false,
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Audited
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = AuditedRoute<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AuditedRoute {
            service: Rc::new(service),
            declared: *self,
        }))
    }
}

/// The route's service behind its `Audited` declaration.
pub struct AuditedRoute<S> {
    service: Rc<S>,
    declared: Audited,
}

impl<S, B> Service<ServiceRequest> for AuditedRoute<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let declared = self.declared;
        Box::pin(async move {
            if declared.reserve
                && let Some(audit) = req.app_data::<web::Data<AuditLog>>().cloned()
                && let Err(e) = audit.reserve().await
            {
                log::error!(
                    "refused {} {}: the audit log cannot be written: {e}",
                    req.method(),
                    req.path()
                );
                // No action is declared on a refused request: it did nothing to audit.
                let refusal = ApiError::from(e).error_response();
                return Ok(req.into_response(refusal).map_into_right_body());
            }
            req.extensions_mut().insert(AuditAction(declared.action));
            // The write guard runs here, once the action is known, so a cross-site or
            // non-JSON write is refused and still audited (as denied) under its action.
            if let Some(refusal) = crate::write_guard::refusal(&req) {
                return Ok(req.error_response(refusal).map_into_right_body());
            }
            service
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        })
    }
}
