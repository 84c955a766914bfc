//! Versioned, idempotent schema migrations, kept in `migrations/*.cql` and compiled in. Each is
//! applied once per keyspace and recorded in `schema_migrations`; every statement is written
//! to be safe to run again (`IF NOT EXISTS`), so a migration interrupted halfway is simply run
//! again. Run them from one place at a time (`message-service migrate`, a deploy job), since
//! concurrent schema changes from several clients are what Cassandra handles worst.

use std::time::{Duration, Instant};

use cdrs_tokio::types::rows::Row;
use uuid::Uuid;

use crate::config::CassandraConfig;
use crate::error::CassandraError;
use crate::rows::get;
use crate::session::{Db, OneCoordinatorSession, connect, connect_one_coordinator};

/// One migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Applied in increasing order.
    pub version: u32,
    /// The file it comes from.
    pub name: &'static str,
    /// Its statements, separated by `;`.
    pub cql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_messages_and_chats.cql",
        cql: include_str!("../migrations/0001_messages_and_chats.cql"),
    },
    Migration {
        version: 2,
        name: "0002_outbox.cql",
        cql: include_str!("../migrations/0002_outbox.cql"),
    },
    Migration {
        version: 3,
        name: "0003_outbox_leases.cql",
        cql: include_str!("../migrations/0003_outbox_leases.cql"),
    },
    Migration {
        version: 4,
        name: "0004_speculative_retry.cql",
        cql: include_str!("../migrations/0004_speculative_retry.cql"),
    },
];

/// Schema changes may take a while on a busy node.
const SCHEMA_TIMEOUT_MS: u64 = 60_000;

/// Creates the keyspace if needed and applies every migration not yet applied. Returns the
/// versions applied now.
///
/// # Errors
/// [`CassandraError`] when the cluster is unreachable or a statement fails.
pub async fn migrate(config: &CassandraConfig) -> Result<Vec<u32>, CassandraError> {
    let keyspace = config.checked_keyspace()?;
    // Every schema change goes to one node, which is also the one asked whether all nodes
    // agree: asked elsewhere, a node that has not heard of the change yet agrees with the
    // others on the old schema.
    let admin = connect_one_coordinator(config, None).await?;
    change_schema(
        &admin,
        &format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {}",
            config.replication_cql()?
        ),
    )
    .await?;
    change_schema(
        &admin,
        &format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations \
             (version int PRIMARY KEY, name text, applied_at timestamp)"
        ),
    )
    .await?;
    let db = Db::new(
        connect(config, Some(keyspace)).await?,
        config,
        Some(keyspace),
    )?;
    let applied_rows = db
        .query("SELECT version FROM schema_migrations", SCHEMA_TIMEOUT_MS)
        .await?;
    let applied: Vec<i32> = applied_rows
        .iter()
        .map(|row| get::<i32>(row, "version", "schema_migrations"))
        .collect::<Result<_, _>>()?;
    let coordinator = connect_one_coordinator(config, Some(keyspace)).await?;
    let mut now_applied = Vec::new();
    for migration in MIGRATIONS {
        let version = i32::try_from(migration.version).unwrap_or(i32::MAX);
        if applied.contains(&version) {
            continue;
        }
        for statement in statements(migration.cql) {
            change_schema(&coordinator, &statement)
                .await
                .map_err(|error| CassandraError::Migration {
                    version: migration.version,
                    name: migration.name,
                    reason: error.to_string(),
                })?;
        }
        db.query(
            &format!(
                "INSERT INTO schema_migrations (version, name, applied_at) \
                 VALUES ({version}, '{}', toTimestamp(now()))",
                migration.name
            ),
            SCHEMA_TIMEOUT_MS,
        )
        .await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "migration applied"
        );
        now_applied.push(migration.version);
    }
    Ok(now_applied)
}

/// Runs one schema change on `coordinator`, then waits until every node has it.
async fn change_schema(
    coordinator: &OneCoordinatorSession,
    cql: &str,
) -> Result<(), CassandraError> {
    coordinator_query(coordinator, cql).await?;
    wait_for_schema_agreement(coordinator).await
}

async fn coordinator_query(
    coordinator: &OneCoordinatorSession,
    cql: &str,
) -> Result<Vec<Row>, CassandraError> {
    let envelope = tokio::time::timeout(
        Duration::from_millis(SCHEMA_TIMEOUT_MS),
        coordinator.query(cql),
    )
    .await
    .map_err(|_| CassandraError::Timeout(SCHEMA_TIMEOUT_MS))??;
    Ok(envelope.response_body()?.into_rows().unwrap_or_default())
}

/// The statements of a migration file: `--` comments dropped, split on `;`.
fn statements(cql: &str) -> Vec<String> {
    let without_comments: String = cql
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Waits until every node reports the same schema version, so the statements that follow
/// (and other instances' prepares) see the change on whichever node they reach. As the
/// drivers' own agreement checks do, it reads `system.local` and `system.peers` from one node:
/// read from two nodes they would skip one node's own version.
async fn wait_for_schema_agreement(
    coordinator: &OneCoordinatorSession,
) -> Result<(), CassandraError> {
    let deadline = Instant::now() + Duration::from_millis(SCHEMA_TIMEOUT_MS);
    loop {
        let mut versions = Vec::new();
        for (table, cql) in [
            ("system.local", "SELECT schema_version FROM system.local"),
            ("system.peers", "SELECT schema_version FROM system.peers"),
        ] {
            for row in coordinator_query(coordinator, cql).await? {
                // A peer still joining has no version yet: it is not a disagreement.
                if let Ok(version) = get::<Uuid>(&row, "schema_version", table) {
                    versions.push(version);
                }
            }
        }
        if versions.windows(2).all(|pair| pair[0] == pair[1]) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CassandraError::Timeout(SCHEMA_TIMEOUT_MS));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_split_into_statements_without_comments() {
        let all: Vec<String> = MIGRATIONS.iter().flat_map(|m| statements(m.cql)).collect();
        let creates = all
            .iter()
            .filter(|s| s.starts_with("CREATE TABLE IF NOT EXISTS"))
            .count();
        assert_eq!(
            creates, 7,
            "one CREATE TABLE per table of the first three files"
        );
        let alters = all.iter().filter(|s| s.starts_with("ALTER TABLE")).count();
        assert_eq!(alters, 6, "the speculative-retry delay of every read table");
        assert_eq!(all.len(), creates + alters);
        assert!(all.iter().all(|s| !s.contains("--")));
    }

    #[test]
    fn versions_increase() {
        assert!(
            MIGRATIONS
                .windows(2)
                .all(|pair| pair[0].version < pair[1].version)
        );
    }

    #[test]
    fn no_statement_uses_allow_filtering() {
        // The migrations, and every statement the adapters prepare or run (their sources,
        // where the CQL text lives): every query must be a single-partition read.
        let sources = MIGRATIONS.iter().map(|migration| migration.cql).chain([
            include_str!("store/mod.rs"),
            include_str!("store/statements.rs"),
            include_str!("store/messages.rs"),
            include_str!("store/claims.rs"),
            include_str!("store/continuation.rs"),
            include_str!("store/outbox.rs"),
            include_str!("store/leases.rs"),
            include_str!("chats.rs"),
            include_str!("session.rs"),
            include_str!("health.rs"),
            include_str!("migrations.rs"),
        ]);
        let forbidden = ["ALLOW", "FILTERING"].join(" ");
        for source in sources {
            assert!(!source.to_ascii_uppercase().contains(&forbidden));
        }
    }
}
