//! Reading a request body with a size limit, answering 413 as problem+json.
//!
//! The buffer grows as bytes arrive; a declared `Content-Length` is never allocated up front.
//! The deadline and the memory budget for bodies in flight are enforced around every handler by
//! [`super::budget`].

use actix_web::web;
use futures_util::StreamExt;

use crate::error::ApiError;

/// GitHub does not deliver payloads over 25 MB.
pub const WEBHOOK_BODY_LIMIT: usize = 25 * 1024 * 1024;

/// A body's buffer is allocated at its declared length up to this much; past it, it grows.
const PREALLOCATE_AT_MOST: usize = 256 * 1024;

/// Reads the whole body, refusing more than `limit` bytes. A body somewhat over the limit is
/// still drained, so the client reads the 413 instead of a reset connection; one that declares
/// or sends more than twice the limit is cut off.
pub async fn read_limited(
    req: &actix_web::HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit.saturating_mul(2)) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    // Room for the declared length up front (no regrowing and copying as chunks arrive), but
    // not more than a typical delivery's worth on a client's word alone.
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit).min(PREALLOCATE_AT_MOST));
    let mut total = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("unreadable-body", format!("the request body could not be read: {e}"))
        })?;
        total = total.saturating_add(chunk.len());
        if total > limit.saturating_mul(2) {
            break;
        }
        if total <= limit {
            body.extend_from_slice(&chunk);
        }
    }
    if total > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(body.freeze())
}
