//! `POST /chats`, `GET /users/chat`, `GET /users/chat/{chat_id}`.

use actix_web::{HttpResponse, web};
use chat_domain::{ChatId, CursorId, Message, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::rate_limits::Action;
use crate::state::AppState;

/// Body of `POST /chats`.
#[derive(Deserialize)]
pub struct OpenChat {
    peer_id: String,
}

#[derive(Serialize)]
struct ChatBody {
    chat_id: ChatId,
    members: [UserId; 2],
    peer_id: UserId,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// Takes one of `user`'s `action` tokens, or answers 429 with `Retry-After`.
fn rate_limit(state: &AppState, action: Action, user: UserId) -> Result<(), ApiError> {
    state.rate_limits.check(action, user).map_err(|wait| {
        state.metrics.error("rate_limited", "http");
        ApiError::rate_limited(wait)
    })
}

/// Opens (or finds) the chat of the caller and `peer_id`.
///
/// # Errors
/// 400 for a bad or self `peer_id`, 503 on a store outage.
pub async fn open(
    Authenticated(caller): Authenticated,
    body: web::Json<OpenChat>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    rate_limit(&state, Action::OpenChat, caller.user_id)?;
    let peer = UserId::parse(&body.peer_id, "peer_id")?;
    let chat = state.service.open_chat(caller.user_id, peer).await?;
    Ok(HttpResponse::Ok().json(ChatBody {
        chat_id: chat.id,
        members: chat.members,
        peer_id: peer,
        created_at: chat.created_at,
    }))
}

/// Query of `GET /users/chat`.
#[derive(Deserialize)]
pub struct ListQuery {
    user_id: Option<String>,
}

#[derive(Serialize)]
struct ChatListBody {
    user_id: UserId,
    chat_ids: Vec<ChatId>,
    chats: Vec<chat_domain::ChatSummary>,
}

/// The caller's chats; `user_id`, when given, must be the caller.
///
/// # Errors
/// 403 for another user's id, 400 for a malformed one, 503 on an outage.
pub async fn list(
    Authenticated(caller): Authenticated,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    rate_limit(&state, Action::Read, caller.user_id)?;
    let of = match &query.user_id {
        Some(text) => UserId::parse(text, "user_id")?,
        None => caller.user_id,
    };
    let chats = state.service.list_chats(caller.user_id, of).await?;
    Ok(HttpResponse::Ok().json(ChatListBody {
        user_id: of,
        chat_ids: chats.iter().map(|chat| chat.chat_id).collect(),
        chats,
    }))
}

/// Query of `GET /users/chat/{chat_id}`.
#[derive(Deserialize)]
pub struct HistoryQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct HistoryBody {
    chat_id: ChatId,
    messages: Vec<Message>,
    next_cursor: Option<CursorId>,
    has_more: bool,
}

/// A page of a chat's messages, newest first, with the cursor of the next page.
///
/// # Errors
/// 404 for a chat the caller is not in, 400 for a bad limit or cursor, 503 on an outage.
pub async fn history(
    Authenticated(caller): Authenticated,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    rate_limit(&state, Action::Read, caller.user_id)?;
    let chat_id = ChatId::parse(&path, "chat_id")?;
    let limit = match &query.limit {
        Some(text) => Some(
            text.parse::<u32>()
                .map_err(|_| chat_domain::Error::invalid("limit", "must be a whole number"))?,
        ),
        None => None,
    };
    let cursor = match &query.cursor {
        Some(text) if !text.is_empty() => Some(CursorId::parse(text)?),
        _ => None,
    };
    let page = state
        .service
        .history(caller.user_id, chat_id, limit, cursor.as_ref())
        .await?;
    Ok(HttpResponse::Ok().json(HistoryBody {
        chat_id: page.chat_id,
        messages: page.messages,
        next_cursor: page.next_cursor,
        has_more: page.has_more,
    }))
}
