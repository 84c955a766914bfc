//! The store phases (raw insert, claim, append, and the pre-2026-11-30 append as `batched`) on a keyspace of their own, created with
//! the service's migrations and dropped at the end, with the stack's own Cassandra settings
//! (consistency, pool size, timeouts) and content keys, so each row costs what the service's
//! rows cost.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cdrs_tokio::query::PreparedQuery;
use cdrs_tokio::query_values;
use cdrs_tokio::types::blob::Blob;
use chat_cassandra::session::{Db, connect};
use chat_cassandra::store::message_values;
use chat_cassandra::{CassandraConfig, CassandraStore};
use chat_domain::{MessageIdGenerator, MessageStore, NewMessageEvent, StoredMessage, UserId};

use crate::error::BenchError;
use crate::latency::Recorder;

/// The messages row, exactly as the store inserts it.
const INSERT_MESSAGE: &str = chat_cassandra::store::INSERT_MESSAGE_CQL;

/// The dedup claim, exactly as the store runs it.
const CLAIM: &str = chat_cassandra::store::CLAIM_CQL;

/// Outbox buckets are one minute wide, as in the store.
const BUCKET_MILLIS: i64 = 60_000;

/// How long the keyspace drop may take (it snapshots nothing, but it is a schema change).
const DROP_TIMEOUT_MS: u64 = 60_000;

/// A fresh keyspace with the service's schema, and what the phases write with.
pub struct Fixture {
    config: CassandraConfig,
    db: Db,
    store: CassandraStore,
    insert_message: PreparedQuery,
    claim: PreparedQuery,
    insert_outbox: PreparedQuery,
    insert_outbox_bucket: PreparedQuery,
    cipher: chat_crypto::MessageCipher,
    ids: MessageIdGenerator,
    pairs: Vec<(UserId, UserId)>,
    text: String,
    dedup_ttl_secs: i32,
}

/// What one store phase did.
pub struct Outcome {
    /// Operations that succeeded.
    pub done: u64,
    /// Operations that failed (counted, not retried).
    pub errors: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Latency of the successful ones.
    pub latency: Recorder,
    /// The first error, to show what went wrong.
    pub first_error: Option<String>,
}

/// When a phase stops.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// After this many operations.
    Count(u64),
    /// After this long.
    For(Duration),
}

impl Fixture {
    /// Migrates keyspace `chat_bench_<random>` with `base`'s settings (contact points from
    /// `CHAT_TEST_CASSANDRA` when set) and prepares the statements.
    ///
    /// # Errors
    /// [`BenchError`] when Cassandra does not answer or the keys do not build a cipher.
    pub async fn create(
        base: &CassandraConfig,
        crypto: &chat_crypto::CryptoConfig,
        chats: usize,
        text_bytes: usize,
    ) -> Result<Self, BenchError> {
        let mut config = base.clone();
        config.keyspace = format!("chat_bench_{}", uuid::Uuid::new_v4().simple());
        if let Ok(points) = std::env::var("CHAT_TEST_CASSANDRA") {
            config.contact_points = points.split(',').map(str::to_owned).collect();
        }
        chat_cassandra::migrate(&config).await?;
        let session = connect(&config, Some(&config.keyspace)).await?;
        let db = Db::new(session, &config, Some(&config.keyspace))?;
        let store = CassandraStore::new(db.clone(), &config).await?;
        let insert_message = db.prepare(INSERT_MESSAGE).await?;
        let claim = db.prepare(CLAIM).await?;
        let insert_outbox = db.prepare(chat_cassandra::store::INSERT_OUTBOX_CQL).await?;
        let insert_outbox_bucket = db
            .prepare(chat_cassandra::store::INSERT_OUTBOX_BUCKET_CQL)
            .await?;
        let pairs = (0..chats.max(1))
            .map(|_| (system_tests::user(), system_tests::user()))
            .collect();
        Ok(Self {
            dedup_ttl_secs: i32::try_from(config.dedup_ttl_secs).unwrap_or(i32::MAX),
            config,
            db,
            store,
            insert_message,
            claim,
            insert_outbox,
            insert_outbox_bucket,
            cipher: chat_crypto::MessageCipher::from_config(crypto)?,
            ids: MessageIdGenerator::new(),
            pairs,
            text: "x".repeat(text_bytes.max(1)),
        })
    }

    /// The keyspace the phases write into.
    pub fn keyspace(&self) -> &str {
        &self.config.keyspace
    }

    /// Drops the keyspace.
    ///
    /// # Errors
    /// [`BenchError::Cassandra`] when the drop fails (the keyspace is then left behind).
    pub async fn drop_keyspace(&self) -> Result<(), BenchError> {
        let cql = format!("DROP KEYSPACE IF EXISTS {}", self.config.keyspace);
        self.db.query(&cql, DROP_TIMEOUT_MS).await?;
        Ok(())
    }

    /// The `n`th message, sealed as the service seals, and its event: built before the clock
    /// starts, so every phase times only its statements.
    fn message(&self, phase: &str, n: u64) -> (StoredMessage, NewMessageEvent) {
        let (sender, recipient) = self.pairs[usize::try_from(n).unwrap_or(0) % self.pairs.len()];
        let message = chat_domain::testing::sealed_message(
            &self.cipher,
            &self.ids,
            sender,
            recipient,
            &format!("{phase}-{n}"),
            &self.text,
        );
        let event = NewMessageEvent::for_message(&message, false);
        (message, event)
    }

    async fn raw_insert(&self, message: &StoredMessage) -> Result<(), BenchError> {
        self.db
            .run(&self.insert_message, message_values(message), true)
            .await?;
        Ok(())
    }

    /// The send path as `append` ran it until 2026-11-30: the claim, then one logged batch of
    /// the message row, its outbox row and the outbox index row. Kept so that the old and the
    /// new write path are compared in one run.
    async fn batched_append(
        &self,
        message: &StoredMessage,
        event: &NewMessageEvent,
    ) -> Result<(), BenchError> {
        self.claim(message, event).await?;
        let bucket =
            chat_domain::model::millis(time::OffsetDateTime::now_utc()).div_euclid(BUCKET_MILLIS);
        // Which shard does not change the cost; the store spreads events the same way.
        let shard = i32::from(event.event_id.as_bytes()[15] % 8);
        self.db
            .logged_batch(vec![
                (&self.insert_message, message_values(message)),
                (
                    &self.insert_outbox,
                    query_values!(
                        bucket,
                        shard,
                        *event.event_id.as_uuid(),
                        Blob::from(serde_json::to_vec(event)?)
                    ),
                ),
                (&self.insert_outbox_bucket, query_values!(shard, bucket)),
            ])
            .await?;
        Ok(())
    }

    async fn claim(
        &self,
        message: &StoredMessage,
        event: &NewMessageEvent,
    ) -> Result<(), BenchError> {
        let values = query_values!(
            *message.chat_id.as_uuid(),
            *message.sender_id.as_uuid(),
            message.client_msg_id.as_str().to_owned(),
            *message.id.as_uuid(),
            Blob::from(serde_json::to_vec(message)?),
            Blob::from(serde_json::to_vec(event)?),
            self.dedup_ttl_secs
        );
        let (applied, _) = self.db.run_conditional(&self.claim, values).await?;
        if applied {
            Ok(())
        } else {
            Err(BenchError::Setup(
                "a fresh claim was found taken".to_owned(),
            ))
        }
    }
}

/// Which statement a store phase runs.
#[derive(Debug, Clone, Copy)]
pub enum StorePhase {
    /// `INSERT INTO messages`.
    Raw,
    /// The dedup claim.
    Claim,
    /// `CassandraStore::append`.
    Append,
    /// The claim plus a logged batch: the send path until 2026-11-30.
    Batched,
}

impl StorePhase {
    fn tag(self) -> &'static str {
        match self {
            Self::Raw => "r",
            Self::Claim => "c",
            Self::Append => "a",
            Self::Batched => "b",
        }
    }
}

/// Runs `phase` from `writers` concurrent writers until `limit`.
pub async fn run(
    fixture: &Rc<Fixture>,
    phase: StorePhase,
    writers: usize,
    limit: Limit,
) -> Outcome {
    let fixture = fixture.clone();
    drive(writers, limit, move |n| {
        let fixture = fixture.clone();
        async move {
            let (message, event) = fixture.message(phase.tag(), n);
            let started = Instant::now();
            match phase {
                StorePhase::Raw => fixture.raw_insert(&message).await?,
                StorePhase::Claim => fixture.claim(&message, &event).await?,
                StorePhase::Append => {
                    fixture.store.append(&message, &event).await?;
                }
                StorePhase::Batched => fixture.batched_append(&message, &event).await?,
            }
            Ok(started.elapsed())
        }
    })
    .await
}

/// Runs `operation(n)` for n = 0, 1, … from `writers` tasks until `limit`; each operation
/// returns how long its timed part took.
async fn drive<F, Fut>(writers: usize, limit: Limit, operation: F) -> Outcome
where
    F: Fn(u64) -> Fut + Clone + 'static,
    Fut: Future<Output = Result<Duration, BenchError>> + 'static,
{
    let next = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let deadline = match limit {
        Limit::For(duration) => Some(started + duration),
        Limit::Count(_) => None,
    };
    let tasks: Vec<_> = (0..writers.max(1))
        .map(|_| {
            let (next, operation) = (next.clone(), operation.clone());
            actix_web::rt::spawn(async move {
                let mut outcome = Outcome {
                    done: 0,
                    errors: 0,
                    elapsed: Duration::ZERO,
                    latency: Recorder::new(),
                    first_error: None,
                };
                loop {
                    let n = next.get();
                    let over = match (limit, deadline) {
                        (Limit::Count(count), _) => n >= count,
                        (_, Some(deadline)) => Instant::now() >= deadline,
                        _ => true,
                    };
                    if over {
                        return outcome;
                    }
                    next.set(n + 1);
                    match operation(n).await {
                        Ok(latency) => {
                            outcome.done += 1;
                            outcome.latency.record(latency);
                        }
                        Err(error) => {
                            outcome.errors += 1;
                            outcome.first_error.get_or_insert_with(|| error.to_string());
                        }
                    }
                }
            })
        })
        .collect();
    let mut total = Outcome {
        done: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: Recorder::new(),
        first_error: None,
    };
    for task in tasks {
        if let Ok(outcome) = task.await {
            total.done += outcome.done;
            total.errors += outcome.errors;
            total.latency.merge(&outcome.latency);
            if total.first_error.is_none() {
                total.first_error = outcome.first_error;
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}
