//! [`ChatDirectory`] over Cassandra: `chats` (one row per chat) and `user_chats` (one
//! partition per user).
//!
//! Opening writes both members' `user_chats` rows first, then claims the chat with a
//! lightweight transaction; when the chat existed, the rows are rewritten with its original
//! `created_at`. Every step is idempotent, so an open interrupted halfway is completed by the
//! next one, and two concurrent opens from both sides agree on one chat.

use async_trait::async_trait;
use cdrs_tokio::query::PreparedQuery;
use cdrs_tokio::query_values;
use chat_domain::{Chat, ChatDirectory, ChatId, ChatSummary, UserId};
use time::PrimitiveDateTime;
use uuid::Uuid;

use crate::error::CassandraError;
use crate::rows::get;
use crate::session::Db;
use crate::store::cql_time;

/// Chats and their members in Cassandra.
pub struct CassandraChats {
    db: Db,
    claim: PreparedQuery,
    list_for_user: PreparedQuery,
    one: PreparedQuery,
    of_user: PreparedQuery,
}

impl CassandraChats {
    /// Prepares every statement on `db` (whose session uses the service's keyspace).
    ///
    /// # Errors
    /// [`CassandraError`] when a statement does not prepare (e.g. migrations not applied).
    pub async fn new(db: Db) -> Result<Self, CassandraError> {
        Ok(Self {
            claim: db
                .prepare(
                    "INSERT INTO chats (chat_id, member_low, member_high, created_at) \
                     VALUES (?, ?, ?, ?) IF NOT EXISTS",
                )
                .await?,
            list_for_user: db
                .prepare(
                    "INSERT INTO user_chats (user_id, chat_id, peer_id, created_at) \
                     VALUES (?, ?, ?, ?)",
                )
                .await?,
            one: db
                .prepare(
                    "SELECT chat_id, member_low, member_high, created_at FROM chats \
                     WHERE chat_id = ?",
                )
                .await?,
            of_user: db
                .prepare("SELECT chat_id, peer_id, created_at FROM user_chats WHERE user_id = ?")
                .await?,
            db,
        })
    }

    async fn list_for_members(&self, chat: &Chat) -> Result<(), CassandraError> {
        let [low, high] = chat.members;
        let created_at = cql_time(chat.created_at);
        self.db
            .logged_batch(vec![
                (
                    &self.list_for_user,
                    query_values!(
                        *low.as_uuid(),
                        *chat.id.as_uuid(),
                        *high.as_uuid(),
                        created_at
                    ),
                ),
                (
                    &self.list_for_user,
                    query_values!(
                        *high.as_uuid(),
                        *chat.id.as_uuid(),
                        *low.as_uuid(),
                        created_at
                    ),
                ),
            ])
            .await
    }
}

fn chat_of_row(row: &cdrs_tokio::types::rows::Row) -> Result<Chat, CassandraError> {
    const TABLE: &str = "chats";
    Ok(Chat {
        id: ChatId::from_uuid(get::<Uuid>(row, "chat_id", TABLE)?),
        members: [
            UserId::from_uuid(get::<Uuid>(row, "member_low", TABLE)?),
            UserId::from_uuid(get::<Uuid>(row, "member_high", TABLE)?),
        ],
        created_at: get::<PrimitiveDateTime>(row, "created_at", TABLE)?.assume_utc(),
    })
}

#[async_trait]
impl ChatDirectory for CassandraChats {
    async fn open(&self, chat: &Chat) -> chat_domain::Result<Chat> {
        self.list_for_members(chat).await?;
        let [low, high] = chat.members;
        let (claimed, existing) = self
            .db
            .run_conditional(
                &self.claim,
                query_values!(
                    *chat.id.as_uuid(),
                    *low.as_uuid(),
                    *high.as_uuid(),
                    cql_time(chat.created_at)
                ),
            )
            .await?;
        if claimed {
            return Ok(chat.clone());
        }
        let existing = existing.ok_or_else(|| CassandraError::BadRow {
            table: "chats",
            reason: "no existing row".to_owned(),
        })?;
        let stored = chat_of_row(&existing)?;
        if stored.created_at != chat.created_at {
            self.list_for_members(&stored).await?;
        }
        Ok(stored)
    }

    async fn get(&self, chat: ChatId) -> chat_domain::Result<Option<Chat>> {
        let rows = self
            .db
            .run(&self.one, query_values!(*chat.as_uuid()), true)
            .await?;
        Ok(rows.first().map(chat_of_row).transpose()?)
    }

    async fn chats_of(&self, user: UserId) -> chat_domain::Result<Vec<ChatSummary>> {
        const TABLE: &str = "user_chats";
        let mut chats = Vec::new();
        let mut paging_state = None;
        loop {
            let page = self
                .db
                .page(
                    &self.of_user,
                    query_values!(*user.as_uuid()),
                    1000,
                    paging_state,
                )
                .await?;
            for row in &page.rows {
                chats.push(ChatSummary {
                    chat_id: ChatId::from_uuid(get::<Uuid>(row, "chat_id", TABLE)?),
                    peer_id: UserId::from_uuid(get::<Uuid>(row, "peer_id", TABLE)?),
                    created_at: get::<PrimitiveDateTime>(row, "created_at", TABLE)?.assume_utc(),
                });
            }
            match page.paging_state {
                Some(next) => paging_state = Some(next),
                None => break,
            }
        }
        chats.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.chat_id.cmp(&b.chat_id))
        });
        Ok(chats)
    }
}
