//! `HEAD` on every `GET` route (RFC 9110 §9.3.2: general-purpose servers support it; load
//! balancers and uptime checkers send it). The request runs as a `GET`; actix-http's encoder
//! already knows the connection asked `HEAD` and sends the head of the answer without its body.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

pub async fn answer_head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}
