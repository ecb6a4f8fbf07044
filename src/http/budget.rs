//! Request bodies in flight: each has a deadline, and together they share a memory budget.
//!
//! A middleware ([`guard_bodies`]) wraps every request body as it arrives. The whole body must
//! arrive within the body deadline, or the request is answered 408. Every byte read counts
//! against one budget shared by all requests (a body's declared `Content-Length` is taken from it
//! before its first byte is read); a body that would push it over is answered 503 with
//! `Retry-After` instead of being buffered. The bytes go back to the budget when the request is
//! answered. A body that was not read to its end closes the connection after the answer, so a
//! client cannot keep trickling bytes into a connection that no handler reads any more.
//!
//! This module must not know any route; route size limits stay with the handlers
//! ([`super::body::read_limited`], the extractor configs in [`super::problems`]).

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use futures_util::{FutureExt, Stream};

use crate::error::{problem_response, ApiError};

/// The deadline and the shared budget, registered once as app data.
#[derive(Debug)]
pub struct BodyLimits {
    budget: ByteBudget,
    deadline: Duration,
}

impl BodyLimits {
    pub fn new(budget_bytes: usize, deadline: Duration) -> Self {
        Self {
            budget: ByteBudget::new(budget_bytes),
            deadline,
        }
    }
}

/// Bytes that request bodies may hold at once, all requests together.
#[derive(Debug)]
struct ByteBudget {
    capacity: usize,
    used: AtomicUsize,
}

impl ByteBudget {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `n` bytes if they fit.
    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.capacity)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| Some(used.saturating_sub(n)));
    }
}

/// Why a body was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    TooSlow,
    OverBudget,
}

impl Refusal {
    fn payload_error(self) -> PayloadError {
        let error = match self {
            Self::TooSlow => std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body arrived too slowly"),
            Self::OverBudget => std::io::Error::other("no memory left for request bodies"),
        };
        PayloadError::Io(error)
    }

    fn response(self, deadline: Duration) -> actix_web::HttpResponse {
        match self {
            Self::TooSlow => problem_response(
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                format!("the request body did not arrive within {} seconds", deadline.as_secs()),
                &[],
            ),
            Self::OverBudget => ApiError::Unavailable {
                detail: "the server is reading too many request bodies; retry later".to_owned(),
            }
            .error_response(),
        }
    }
}

/// One request's body: what it holds of the budget and how reading it ended.
struct Reading {
    limits: web::Data<BodyLimits>,
    /// The connection's payload, until it is handed to the answer (see [`HoldPayload`]).
    payload: RefCell<Option<Payload>>,
    held: Cell<usize>,
    received: Cell<usize>,
    finished: Cell<bool>,
    refusal: Cell<Option<Refusal>>,
}

impl Reading {
    /// Makes the budget cover `total` bytes for this request.
    fn cover(&self, total: usize) -> bool {
        let held = self.held.get();
        if total <= held {
            return true;
        }
        if self.limits.budget.try_take(total - held) {
            self.held.set(total);
            true
        } else {
            false
        }
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.limits.budget.give_back(self.held.get());
    }
}

/// The payload the handlers see: the connection's, under the deadline and the budget.
struct GuardedPayload {
    reading: Rc<Reading>,
    declared: Option<usize>,
    started: bool,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl GuardedPayload {
    fn refuse(&self, refusal: Refusal) -> Poll<Option<Result<web::Bytes, PayloadError>>> {
        self.reading.refusal.set(Some(refusal));
        Poll::Ready(Some(Err(refusal.payload_error())))
    }
}

impl Stream for GuardedPayload {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(refusal) = self.reading.refusal.get() {
            return Poll::Ready(Some(Err(refusal.payload_error())));
        }
        if self.reading.finished.get() {
            return Poll::Ready(None);
        }
        if !self.started {
            self.started = true;
            // Take the declared length at once, so a body that cannot fit is refused before
            // any of it is buffered.
            if let Some(declared) = self.declared {
                if !self.reading.cover(declared) {
                    return self.refuse(Refusal::OverBudget);
                }
            }
        }
        if self.deadline.poll_unpin(cx).is_ready() {
            return self.refuse(Refusal::TooSlow);
        }
        let polled = {
            let mut slot = self.reading.payload.borrow_mut();
            match slot.as_mut() {
                Some(payload) => Pin::new(payload).poll_next(cx),
                None => Poll::Ready(None),
            }
        };
        match polled {
            Poll::Ready(Some(Ok(chunk))) => {
                let received = self.reading.received.get().saturating_add(chunk.len());
                self.reading.received.set(received);
                if !self.reading.cover(received) {
                    return self.refuse(Refusal::OverBudget);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                self.reading.finished.set(true);
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

/// An answer that keeps the unread request payload alive until it is sent, so the connection
/// closes after it instead of draining whatever the client still sends.
pub struct HoldPayload {
    body: BoxBody,
    _payload: Option<Payload>,
}

impl MessageBody for HoldPayload {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The middleware (`from_fn`). Requests without a body pass untouched.
pub async fn guard_bodies<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, HoldPayload>>, actix_web::Error> {
    let Some(limits) = req.app_data::<web::Data<BodyLimits>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let deadline = limits.deadline;
    let reading = Rc::new(Reading {
        limits,
        payload: RefCell::new(Some(payload)),
        held: Cell::new(0),
        received: Cell::new(0),
        finished: Cell::new(false),
        refusal: Cell::new(None),
    });
    req.set_payload(Payload::Stream {
        payload: Box::pin(GuardedPayload {
            reading: reading.clone(),
            declared,
            started: false,
            deadline: Box::pin(tokio::time::sleep(deadline)),
        }),
    });

    let response = next.call(req).await?;

    if reading.finished.get() {
        return Ok(response.map_into_left_body());
    }
    let payload = reading.payload.borrow_mut().take();
    let response = match reading.refusal.get() {
        Some(refusal) => {
            tracing::debug!(?refusal, received = reading.received.get(), "request body refused");
            let (req, _) = response.into_parts();
            ServiceResponse::new(req, refusal.response(deadline))
        }
        None => response.map_body(|_, body| BoxBody::new(body)),
    };
    Ok(response
        .map_body(|_, body| HoldPayload {
            body,
            _payload: payload,
        })
        .map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_what_does_not_fit_and_takes_back_what_is_returned() {
        let budget = ByteBudget::new(100);
        assert!(budget.try_take(60));
        assert!(!budget.try_take(41));
        assert!(budget.try_take(40));
        assert!(!budget.try_take(1));
        budget.give_back(60);
        assert!(budget.try_take(60));
        assert!(!budget.try_take(usize::MAX));
    }
}
