//! Who is calling, decided in one place.
//!
//! [`identify`] reads a request's credentials (the admin bearer token, the session cookie, a deploy
//! credential's HTTP Basic) and answers with a [`Principal`] or a refusal. Routes say who may call
//! them with [`require`] (middleware on each route in `http/mod.rs`), which puts the principal in
//! the request's extensions; handlers read it with the [`Caller`] extractor. A request signed over
//! its body (a deploy credential's signed form, an agent's verdict) can only be checked once the
//! handler has read the body: [`require`] lets it through undecided and the handler calls
//! [`identify_signed`], which answers with the same `Principal`. Every failed attempt spends the
//! client's allowance in [`super::throttle`]; a client without one gets 429.
//!
//! The HTML pages use the same middleware with [`Require::or_sign_in`]: whoever it refuses is
//! sent to the sign-in page instead of getting a 401 (a throttled client still gets 429).

use std::future::{ready, Ready};
use std::net::IpAddr;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::session::SessionKind;
use super::AppState;
use crate::config::AgentConfig;
use crate::connections::{self, Connection, NoConnection};
use crate::credentials::Credential;
use crate::error::{ApiError, FieldError};
use crate::github::signature;
use crate::types::{ConnectionId, RepoName, Scope};

/// Who is calling.
///
/// A GitHub user signed in with GitHub slots in as another variant (`GitHubUser { login,
/// connections }`): [`identify`] would answer it for a session of that kind
/// ([`SessionKind`]), and [`Principal::may_see`] and [`Principal::connection_for`] would limit it to
/// its connections as they limit a deploy credential to its own.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Every connection, every route.
    Admin { via: AdminVia },
    /// A deploy credential: its own connection only.
    Deployer(Credential),
    /// An agent's signed verdict: `connection` when it was signed with that connection's own
    /// `agent_secret`, `None` for the server's `SHIPLOG_AGENT_SECRET`.
    Agent { connection: Option<ConnectionId> },
    /// A Prometheus scrape of `GET /metrics`: reads the metrics and nothing else.
    Scraper,
}

/// How the admin proved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminVia {
    Token,
    Session,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin { .. })
    }

    /// The connections this caller may see. An agent only posts verdicts; were it to list
    /// anything, it would see its own connection's, and the server's agent nothing.
    pub fn scope(&self) -> Scope {
        match self {
            Self::Admin { .. } => Scope::All,
            Self::Deployer(credential) => Scope::Connection(credential.connection_id),
            Self::Agent { connection: Some(id) } => Scope::Connection(*id),
            Self::Agent { connection: None } | Self::Scraper => Scope::Nothing,
        }
    }

    /// Whether this caller may see a resource of `connection` (to others it does not exist).
    pub fn may_see(&self, connection: ConnectionId) -> bool {
        self.scope().includes(connection)
    }

    /// The connection this caller may act on for `repository` ([`connections::connection_for`]):
    /// 403 `wrong-connection` when the caller's connection does not have it; when no connection
    /// has it, the error says so where the repository was named (`named_in`).
    pub async fn connection_for(
        &self,
        store: &crate::store::Store,
        repository: &RepoName,
        named_in: NamedIn,
    ) -> Result<Connection, ApiError> {
        match connections::connection_for(store, self.scope(), repository).await? {
            Ok(connection) => Ok(connection),
            Err(NoConnection::ScopeGone) => Err(ApiError::not_found("no such connection")),
            Err(NoConnection::Deleted) => Err(ApiError::Forbidden {
                kind: "connection-deleted",
                detail:
                    "the GitHub App installation of this credential's connection was deleted; it accepts no changes"
                        .to_owned(),
            }),
            Err(NoConnection::NotInScope { connection }) => Err(ApiError::Forbidden {
                kind: "wrong-connection",
                detail: format!(
                    "{repository} does not belong to this credential's connection ({})",
                    connection.account.login
                ),
            }),
            Err(NoConnection::Unknown) => Err(match named_in {
                NamedIn::Query => ApiError::not_found(format!(
                    "no connection has {repository}: install the GitHub App on its account"
                )),
                NamedIn::Body => {
                    ApiError::unprocessable(vec![FieldError::new("repository", "no connection has this repository")])
                }
            }),
        }
    }
}

/// Where a request named its repository, which decides how "no connection has it" is answered:
/// a query names a resource (404), a body a field (422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedIn {
    Query,
    Body,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The admin: the bearer token, or a session for `GET`/`HEAD`.
    Admin,
    /// The admin (a session only for `GET`/`HEAD`), or a deploy credential by HTTP Basic.
    Viewer,
    /// A deploy credential: HTTP Basic, or the form signed over the body
    /// (`X-Shiplog-Credential`, `-Timestamp`, `-Signature-256`; [`identify_signed`]).
    Deployer,
    /// An agent, its `X-Shiplog-Signature-256` over the body ([`identify_signed`]), or the admin
    /// token.
    Agent,
    /// A Prometheus scrape: `SHIPLOG_METRICS_TOKEN` or the admin token as a bearer token; on a
    /// metrics listener of its own (`SHIPLOG_METRICS_LISTEN`) without a metrics token, anyone.
    Metrics,
}

/// The middleware that lets a route's callers through: see [`require`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Require {
    access: Access,
    sign_in: bool,
}

/// Lets through the callers `access` allows, with their [`Principal`] for [`Caller`]; answers
/// anyone else with the refusal (401, 403 or 429 as problem+json).
pub fn require(access: Access) -> Require {
    Require { access, sign_in: false }
}

impl Require {
    /// For the HTML pages: a refused caller is sent to sign in (303 to `/login?next=…`), and a
    /// session counts for every method, since every page form carries a CSRF token its handler
    /// checks. A throttled client still gets 429.
    pub fn or_sign_in(self) -> Self {
        Self { sign_in: true, ..self }
    }

    /// Who it lets through (the API document's `security` comes from this).
    pub fn access(&self) -> Access {
        self.access
    }

    /// Whether a refused caller is sent to sign in, and a session counts for every method.
    pub fn signs_in(&self) -> bool {
        self.sign_in
    }
}

/// What [`require`] leaves in the request's extensions.
#[derive(Debug, Clone)]
enum Decision {
    Known(Principal),
    /// Signed over the body: [`identify_signed`] decides once the handler has read it.
    SignedBody,
}

/// Decides who is calling from the request's headers and cookies, for a route that allows
/// `access` (`pages`: a session counts for every method).
async fn identify(req: &HttpRequest, access: Access, pages: bool) -> Result<Decision, ApiError> {
    let state = app_state(req)?;
    let admin = |via| Decision::Known(Principal::Admin { via });
    match access {
        Access::Admin if pages => {
            if has_session(req, &state).await? {
                return Ok(admin(AdminVia::Session));
            }
            authorize_admin(req, &state).map(|()| admin(AdminVia::Token))
        }
        Access::Admin => {
            if bearer_token(req).is_none() && reads_only(req) && has_session(req, &state).await? {
                return Ok(admin(AdminVia::Session));
            }
            authorize_admin(req, &state).map(|()| admin(AdminVia::Token))
        }
        Access::Viewer => {
            if bearer_token(req).is_some() {
                return authorize_admin(req, &state).map(|()| admin(AdminVia::Token));
            }
            if let Some(credential) = basic_credential(req, &state).await? {
                return Ok(Decision::Known(Principal::Deployer(credential)));
            }
            if reads_only(req) && has_session(req, &state).await? {
                return Ok(admin(AdminVia::Session));
            }
            Err(ApiError::Unauthorized {
                kind: "missing-credentials",
                detail: "send the admin token (Bearer) or a deploy credential (Basic)".to_owned(),
                challenge: Some("Basic realm=\"shiplog\", Bearer realm=\"shiplog\""),
            })
        }
        Access::Deployer => {
            if let Some(credential) = basic_credential(req, &state).await? {
                return Ok(Decision::Known(Principal::Deployer(credential)));
            }
            if signed_form(req).is_some() {
                return Ok(Decision::SignedBody);
            }
            Err(ApiError::Unauthorized {
                kind: "missing-credentials",
                detail: "authenticate with a deploy credential: HTTP Basic, or X-Shiplog-Credential, X-Shiplog-Timestamp and X-Shiplog-Signature-256".to_owned(),
                challenge: Some("Basic realm=\"shiplog\""),
            })
        }
        Access::Agent => {
            if agent_signature(req).is_some() {
                return Ok(Decision::SignedBody);
            }
            authorize_admin(req, &state).map(|()| admin(AdminVia::Token))
        }
        Access::Metrics => authorize_scrape(req, &state).map(|()| Decision::Known(Principal::Scraper)),
    }
}

/// The key a route's agent signs with: the connection's own `agent_secret` (`connection` set), or
/// the server's.
#[derive(Debug, Clone)]
pub struct AgentKey {
    pub agent: AgentConfig,
    pub connection: Option<i64>,
}

/// What a body-signed request must be signed with.
#[derive(Debug, Clone, Copy)]
pub enum BodySigner<'a> {
    /// A deploy credential's signed form.
    Deployer,
    /// The agent of the resource, if it has one.
    Agent(Option<&'a AgentKey>),
}

/// Who sent this request, once its `body` is read: the principal [`require`] found, or, for a
/// request signed over its body, the signer `signer` expects.
pub async fn identify_signed(req: &HttpRequest, body: &[u8], signer: BodySigner<'_>) -> Result<Principal, ApiError> {
    let decision = req.extensions().get::<Decision>().cloned();
    match decision {
        Some(Decision::Known(principal)) => return Ok(principal),
        Some(Decision::SignedBody) => {}
        None => return Err(missing_middleware()),
    }
    let state = app_state(req)?;
    match signer {
        BodySigner::Deployer => {
            let Some((username, timestamp, signature)) = signed_form(req) else {
                return Err(missing_middleware());
            };
            check_throttle(req, &state)?;
            crate::credentials::authenticate_signed(
                &state.store,
                username.trim(),
                timestamp,
                signature,
                body,
                state.clock.now(),
            )
            .await
            .map(Principal::Deployer)
            .map_err(|error| credential_failure(req, &state, error))
        }
        BodySigner::Agent(key) => {
            // Right or wrong, a throttled client is answered 429 (as for every other credential).
            check_throttle(req, &state)?;
            let sig = agent_signature(req);
            if let Some(key) =
                key.filter(|k| signature::verify(std::slice::from_ref(&k.agent.secret), sig, body).is_ok())
            {
                return Ok(Principal::Agent {
                    connection: key.connection.map(ConnectionId),
                });
            }
            // A request that also carries a bearer token is the admin's, if the token is right.
            if bearer_token(req).is_some() {
                return authorize_admin(req, &state).map(|()| Principal::Admin { via: AdminVia::Token });
            }
            record_failure(req, &state);
            Err(ApiError::Unauthorized {
                kind: "invalid-signature",
                detail: "X-Shiplog-Signature-256 does not match this check's agent secret".to_owned(),
                challenge: None,
            })
        }
    }
}

/// Whether [`require`] left this request to [`identify_signed`]: it is signed over its body, so
/// the handler should find the key it must be signed with.
pub fn signed_over_body(req: &HttpRequest) -> bool {
    matches!(req.extensions().get::<Decision>(), Some(Decision::SignedBody))
}

fn missing_middleware() -> ApiError {
    ApiError::Internal(anyhow::anyhow!("the route has no `require` middleware for its callers"))
}

/// The caller [`require`] let through. Extracting it on a route without that middleware (or
/// before a body-signed request is verified) is an internal error, never an anonymous caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl std::ops::Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(match req.extensions().get::<Decision>() {
            Some(Decision::Known(principal)) => Ok(Caller(principal.clone())),
            _ => Err(missing_middleware()),
        })
    }
}

/// The admin, as [`require`]`(Access::Admin)` let through: for handlers that need no more than
/// that. On a route that lets anyone else through it is an internal error, never a pass.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(match req.extensions().get::<Decision>() {
            Some(Decision::Known(Principal::Admin { .. })) => Ok(Admin),
            _ => Err(missing_middleware()),
        })
    }
}

impl<S, B> Transform<S, ServiceRequest> for Require
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireService {
            service: Rc::new(service),
            require: *self,
        }))
    }
}

/// [`Require`] around one route.
pub struct RequireService<S> {
    service: Rc<S>,
    require: Require,
}

impl<S, B> Service<ServiceRequest> for RequireService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let Require { access, sign_in } = self.require;
        Box::pin(async move {
            match identify(req.request(), access, sign_in).await {
                Ok(decision) => {
                    req.extensions_mut().insert(decision);
                    Ok(service.call(req).await?.map_into_left_body())
                }
                Err(ApiError::Unauthorized { .. } | ApiError::Forbidden { .. }) if sign_in => {
                    let to_sign_in = super::session::sign_in_redirect(req.request());
                    Ok(req.into_response(to_sign_in).map_into_right_body())
                }
                Err(refused) => Ok(req.error_response(refused).map_into_right_body()),
            }
        })
    }
}

/// The admin bearer token, checked in constant time, throttled per client.
fn authorize_admin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = state.config.admin_token.as_ref() else {
        return Err(ApiError::Forbidden {
            kind: "admin-disabled",
            detail: "the admin API is disabled: set SHIPLOG_ADMIN_TOKEN to enable it".to_owned(),
        });
    };
    let presented = bearer_token(req).ok_or_else(|| ApiError::Unauthorized {
        kind: "missing-credentials",
        detail: "send the admin token as `Authorization: Bearer <token>`".to_owned(),
        challenge: Some("Bearer realm=\"shiplog\""),
    })?;
    check_throttle(req, state)?;
    if constant_time_eq(presented, expected.expose()) {
        Ok(())
    } else {
        record_failure(req, state);
        Err(ApiError::Unauthorized {
            kind: "invalid-credentials",
            detail: "the bearer token is not valid".to_owned(),
            challenge: Some("Bearer realm=\"shiplog\", error=\"invalid_token\""),
        })
    }
}

/// `GET` and `HEAD`: a session may read, never change anything outside the CSRF-checked forms.
/// A scrape of `GET /metrics` ([`Access::Metrics`]). With neither token set it is refused like
/// the admin API (403), unless the metrics have a listener of their own, which is then open.
fn authorize_scrape(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let metrics_token = state.config.metrics.token.as_ref();
    let admin_token = state.config.admin_token.as_ref();
    if metrics_token.is_none() {
        if state.config.metrics.listen.is_some() {
            return Ok(());
        }
        if admin_token.is_none() {
            return Err(ApiError::Forbidden {
                kind: "metrics-disabled",
                detail: "the metrics are disabled: set SHIPLOG_METRICS_TOKEN (or SHIPLOG_ADMIN_TOKEN), or give them their own listener with SHIPLOG_METRICS_LISTEN".to_owned(),
            });
        }
    }
    let presented = bearer_token(req).ok_or_else(|| ApiError::Unauthorized {
        kind: "missing-credentials",
        detail: "send the metrics token (or the admin token) as `Authorization: Bearer <token>`".to_owned(),
        challenge: Some("Bearer realm=\"shiplog\""),
    })?;
    check_throttle(req, state)?;
    let matches =
        |token: Option<&crate::config::Secret>| token.is_some_and(|t| constant_time_eq(presented, t.expose()));
    // Both are compared, so the answer takes as long whichever one was sent.
    let (metrics, admin) = (matches(metrics_token), matches(admin_token));
    if metrics || admin {
        return Ok(());
    }
    record_failure(req, state);
    Err(ApiError::Unauthorized {
        kind: "invalid-credentials",
        detail: "the bearer token is not valid".to_owned(),
        challenge: Some("Bearer realm=\"shiplog\", error=\"invalid_token\""),
    })
}

fn reads_only(req: &HttpRequest) -> bool {
    req.method() == Method::GET || req.method() == Method::HEAD
}

/// Whether the request carries a live admin session.
async fn has_session(req: &HttpRequest, state: &AppState) -> Result<bool, ApiError> {
    if req.cookie(super::session::SESSION_COOKIE).is_none() {
        return Ok(false);
    }
    let kind = super::session::signed_in(req, state, state.clock.now()).await?;
    Ok(kind == Some(SessionKind::Admin))
}

/// A deploy credential sent by HTTP Basic, if the request sends one; a wrong one is refused.
async fn basic_credential(req: &HttpRequest, state: &AppState) -> Result<Option<Credential>, ApiError> {
    let Some((username, password)) = basic_credentials(req) else {
        return Ok(None);
    };
    check_throttle(req, state)?;
    crate::credentials::authenticate_basic(&state.store, &username, &password, state.clock.now())
        .await
        .map(Some)
        .map_err(|error| credential_failure(req, state, error))
}

/// `X-Shiplog-Credential`, `X-Shiplog-Timestamp` and `X-Shiplog-Signature-256`, all present.
fn signed_form(req: &HttpRequest) -> Option<(&str, &str, &str)> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    Some((
        header("x-shiplog-credential")?,
        header("x-shiplog-timestamp")?,
        header("x-shiplog-signature-256")?,
    ))
}

/// An agent's `X-Shiplog-Signature-256`.
fn agent_signature(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("x-shiplog-signature-256")
        .and_then(|v| v.to_str().ok())
}

/// The client a failure is counted against ([`throttle::client_of`]).
fn client(req: &HttpRequest, state: &AppState) -> Option<IpAddr> {
    let forwarded_for: Vec<&str> = if state.config.trusted_proxies.is_empty() {
        Vec::new()
    } else {
        req.headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .collect()
    };
    super::throttle::client_of(
        req.peer_addr().map(|a| a.ip()),
        &forwarded_for,
        &state.config.trusted_proxies,
    )
}

/// 429 while this client has spent its allowance of failures.
pub fn check_throttle(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    state
        .throttle
        .check(client(req, state), state.clock.now())
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })
}

/// One failed attempt by this client.
pub fn record_failure(req: &HttpRequest, state: &AppState) {
    let client = client(req, state);
    tracing::info!(?client, "authentication failed");
    state.throttle.record_failure(client, state.clock.now());
}

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares digests, so neither the content nor the length of the secret leaks through timing.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let a = Sha256::digest(a.as_bytes());
    let b = Sha256::digest(b.as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))
}

/// `Authorization: Basic base64(username:password)`.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = decode_base64(encoded.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

/// A deploy credential that failed: counted against the client, then [`credential_error`].
fn credential_failure(req: &HttpRequest, state: &AppState, error: crate::credentials::AuthError) -> ApiError {
    if !matches!(error, crate::credentials::AuthError::Store(_)) {
        record_failure(req, state);
    }
    credential_error(error)
}

/// A deploy credential that failed: 401 with the challenge, never saying which part was wrong.
fn credential_error(error: crate::credentials::AuthError) -> ApiError {
    match error {
        crate::credentials::AuthError::Store(store) => store.into(),
        other => ApiError::Unauthorized {
            kind: "invalid-credentials",
            detail: other.to_string(),
            challenge: Some("Basic realm=\"shiplog\""),
        },
    }
}

/// Standard base64 (RFC 4648), padding optional.
fn decode_base64(input: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes: Vec<u8> = input.bytes().filter(|b| *b != b'=').collect();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        for i in 0..produced {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWI").unwrap(), b"ab");
        assert!(decode_base64("Y").is_none());
        assert!(decode_base64("@@@@").is_none());
    }
}
