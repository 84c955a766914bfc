//! Which outbox shards this instance relays: a lease per shard in `outbox_leases`, taken and
//! renewed with lightweight transactions, so each shard has one relay at a time.

use std::time::Instant;

use cdrs_tokio::query_values;

use super::{CassandraStore, lock};
use crate::error::CassandraError;

/// This instance's view of an outbox shard's lease.
#[derive(Debug, Clone, Copy)]
pub(super) enum Lease {
    /// Ours until then (measured from before the request, so never later than the server's).
    Held(Instant),
    /// Another instance's: try again then.
    Foreign(Instant),
}

impl CassandraStore {
    /// The outbox shards this store may relay now: those whose lease it holds, taking or
    /// renewing leases as they come due (at half-time; another instance's lease is tried again
    /// every half lease time, so idle relays cost a few lightweight transactions per lease).
    pub(super) async fn leased_shards(&self) -> Result<Vec<i32>, CassandraError> {
        let s = &self.statements;
        let ttl = i32::try_from(self.lease_time.as_secs()).unwrap_or(i32::MAX);
        let owner = self.relay_id;
        let mut held = Vec::new();
        for shard in 0..self.outbox_shards {
            let asked = Instant::now();
            let lease = lock(&self.leases).get(&shard).copied();
            let renew = match lease {
                Some(Lease::Held(until)) if until > asked + self.lease_time / 2 => {
                    held.push(shard);
                    continue;
                }
                Some(Lease::Foreign(retry)) if retry > asked => continue,
                Some(Lease::Held(_)) => true,
                Some(Lease::Foreign(_)) | None => false,
            };
            let mut ours = false;
            if renew {
                (ours, _) = self
                    .db
                    .run_conditional(&s.renew_lease, query_values!(ttl, owner, shard, owner))
                    .await?;
            }
            if !ours {
                (ours, _) = self
                    .db
                    .run_conditional(&s.take_lease, query_values!(shard, owner, ttl))
                    .await?;
            }
            let now = if ours {
                held.push(shard);
                Lease::Held(asked + self.lease_time)
            } else {
                Lease::Foreign(asked + self.lease_time / 2)
            };
            if ours != matches!(lease, Some(Lease::Held(_))) {
                tracing::info!(shard, relay = %owner, held = ours, "outbox shard lease changed hands");
            }
            lock(&self.leases).insert(shard, now);
        }
        Ok(held)
    }

    /// Gives up every lease this store holds, so another instance relays those shards at once
    /// instead of after the lease time.
    pub(super) async fn release_leases(&self) -> Result<(), CassandraError> {
        let held: Vec<i32> = lock(&self.leases)
            .drain()
            .filter_map(|(shard, lease)| matches!(lease, Lease::Held(_)).then_some(shard))
            .collect();
        for shard in held {
            self.db
                .run_conditional(
                    &self.statements.release_lease,
                    query_values!(shard, self.relay_id),
                )
                .await?;
        }
        Ok(())
    }
}
