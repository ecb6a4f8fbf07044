//! `GET /api/live`: the live board as JSON (`board::build`), for the connections the caller may
//! see. The same board as HTML is `pages/board.rs`; both read their filters with [`parse_filter`].

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::auth::Caller;
use super::AppState;
use crate::board::{self, Filter};
use crate::error::{ApiError, FieldError};
use crate::types::{RepoName, Scope};

/// The board's filters as sent (`repository=owner/repo`, `connection=ID`); empty means none.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    pub repository: Option<String>,
    pub connection: Option<String>,
}

/// The filters, every invalid one named; a credential asking for another connection is 403.
pub fn parse_filter(query: &BoardQuery, scope: Scope) -> Result<Filter, ApiError> {
    let mut errors = Vec::new();
    let mut filter = Filter::default();
    if let Some(raw) = query.repository.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        match RepoName::parse(raw) {
            Ok(name) => filter.repository = Some(name),
            Err(message) => errors.push(FieldError::new("repository", message)),
        }
    }
    if let Some(raw) = query.connection.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => filter.connection = Some(id),
            _ => errors.push(FieldError::new(
                "connection",
                "must be a connection id (a positive number)",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    if let (Some(asked), Scope::Connection(own)) = (filter.connection, scope) {
        if asked != own.0 {
            return Err(ApiError::Forbidden {
                kind: "wrong-connection",
                detail: "this credential belongs to another connection".to_owned(),
            });
        }
    }
    Ok(filter)
}

#[utoipa::path(get, path = "/api/live", params(BoardQuery),
    responses((status = 200, description = "what is live where", body = crate::board::Board), (status = 422, description = "an invalid filter, each named")))]
/// `GET /api/live`: one row per repository, one cell per environment, with drift.
#[tracing::instrument(skip_all)]
pub async fn show_live_board(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<BoardQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = parse_filter(&query, caller.scope())?;
    let board = board::build(&state.store, caller.scope(), &filter).await?;
    Ok(HttpResponse::Ok().json(board))
}
