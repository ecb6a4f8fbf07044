//! A fake agent: checks shiplog's signature on every call, records what it accepted, and can be
//! told to fail the next calls. `/redirect` answers `307` to `/hook`, for a caller that must not
//! follow it.

use std::sync::Mutex;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;
use shiplog::config::{AgentConfig, Secret};

pub const AGENT_SECRET: &str = "test-agent-secret";

#[derive(Clone, Debug)]
pub struct Received {
    pub event: String,
    pub delivery: String,
    pub body: Value,
}

#[derive(Default)]
struct AgentState {
    secret: String,
    received: Mutex<Vec<Received>>,
    failures_left: Mutex<u32>,
    bad_signatures: Mutex<u32>,
    redirects: Mutex<u32>,
}

pub struct FakeAgent {
    pub url: String,
    state: web::Data<AgentState>,
    handle: ServerHandle,
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl FakeAgent {
    pub async fn start() -> Self {
        Self::start_with_secret(AGENT_SECRET).await
    }

    /// An agent that only accepts calls signed with `secret`.
    pub async fn start_with_secret(secret: &str) -> Self {
        let state = web::Data::new(AgentState {
            secret: secret.to_owned(),
            ..AgentState::default()
        });
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/hook", web::post().to(receive))
                .route("/redirect", web::post().to(redirect))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
            handle,
        }
    }

    pub fn config(&self) -> AgentConfig {
        AgentConfig {
            url: self.url.clone(),
            secret: Secret::new(self.state.secret.clone()),
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn fail_next(&self, times: u32) {
        *self.state.failures_left.lock().unwrap() = times;
    }

    pub fn bad_signatures(&self) -> u32 {
        *self.state.bad_signatures.lock().unwrap()
    }

    /// Where the agent answers with a redirect to its `/hook`.
    pub fn redirect_url(&self) -> String {
        self.url.replace("/hook", "/redirect")
    }

    /// How many calls `/redirect` answered.
    pub fn redirects(&self) -> u32 {
        *self.state.redirects.lock().unwrap()
    }
}

async fn redirect(state: web::Data<AgentState>) -> HttpResponse {
    *state.redirects.lock().unwrap() += 1;
    HttpResponse::TemporaryRedirect()
        .insert_header(("Location", "/hook"))
        .finish()
}

async fn receive(state: web::Data<AgentState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let signed = shiplog::github::signature::verify(
        &[Secret::new(state.secret.clone())],
        header("x-shiplog-signature-256").as_deref(),
        &body,
    );
    if signed.is_err() {
        *state.bad_signatures.lock().unwrap() += 1;
        return HttpResponse::Unauthorized().finish();
    }
    {
        let mut left = state.failures_left.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return HttpResponse::InternalServerError().body("agent is down");
        }
    }
    state.received.lock().unwrap().push(Received {
        event: header("x-shiplog-event").unwrap_or_default(),
        delivery: header("x-shiplog-delivery").unwrap_or_default(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    HttpResponse::Ok().finish()
}
