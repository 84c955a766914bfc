//! The adapter's configuration: a plain struct, deserializable from any `serde` source.

use std::collections::BTreeMap;
use std::time::Duration;

use cdrs_tokio::consistency::Consistency;
use serde::Deserialize;

use crate::error::CassandraError;

/// How to reach and use the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CassandraConfig {
    /// `host:port` of nodes to contact first; the rest of the ring is discovered.
    pub contact_points: Vec<String>,
    /// The keyspace holding every table of the service.
    pub keyspace: String,
    /// The datacenter of this instance: with it, requests go to its nodes (token-aware) and
    /// `LOCAL_*` consistency levels mean it. Empty: every node counts as local.
    pub local_datacenter: String,
    /// Consistency of reads and writes (`local_quorum`, `quorum`, `one`, …).
    pub consistency: String,
    /// Consistency of the lightweight transactions' Paxos phase (`local_serial` or `serial`).
    pub serial_consistency: String,
    /// The longest any request may take; the driver has no timeout of its own.
    pub request_timeout_ms: u64,
    /// The longest a new connection may take.
    pub connect_timeout_ms: u64,
    /// Connections per local node (the driver's default is one).
    pub pool_size: usize,
    /// CQL protocol version: 4 or 5.
    pub protocol_version: u8,
    /// Optional username (PasswordAuthenticator); empty for none.
    pub username: String,
    /// Password for `username`.
    pub password: String,
    /// How the keyspace is replicated when migrations create it.
    pub replication: Replication,
    /// How long a sender's `client_msg_id` is remembered for dedup (0: forever). The dedup row
    /// holds a copy of the sealed message, so that a retry after a half-done write can finish
    /// it; the TTL bounds that copy's cost.
    pub dedup_ttl_secs: u32,
    /// Outbox shards: events spread over this many partitions per minute, so relays on several
    /// instances do not all read one hot partition. Fixed for the life of a keyspace.
    pub outbox_shards: u16,
    /// How long an instance's lease on an outbox shard lasts (renewed at half-time while its
    /// relay runs). Only the holder relays a shard, so an event is published once; when an
    /// instance dies, its shards wait this long for another. Minimum 2.
    pub outbox_lease_secs: u32,
    /// How often every node is asked OPTIONS, so that requests avoid a node that hangs (its
    /// sockets open, nothing answering) instead of waiting out `request_timeout_ms` there.
    /// 0: never.
    pub node_probe_interval_ms: u64,
    /// A node that has not answered its probe within this long gets requests last.
    pub node_probe_timeout_ms: u64,
}

/// Keyspace replication, used when the keyspace is created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Replication {
    /// `SimpleStrategy` (one datacenter, development) or `NetworkTopologyStrategy`.
    pub class: String,
    /// Replicas, for `SimpleStrategy`.
    pub replication_factor: u32,
    /// Replicas per datacenter, for `NetworkTopologyStrategy`.
    pub datacenters: BTreeMap<String, u32>,
}

impl Default for CassandraConfig {
    fn default() -> Self {
        Self {
            contact_points: vec!["127.0.0.1:9042".to_owned()],
            keyspace: "chat".to_owned(),
            local_datacenter: String::new(),
            consistency: "local_quorum".to_owned(),
            serial_consistency: "local_serial".to_owned(),
            request_timeout_ms: 2_000,
            connect_timeout_ms: 2_000,
            pool_size: 2,
            protocol_version: 4,
            username: String::new(),
            password: String::new(),
            replication: Replication::default(),
            dedup_ttl_secs: 7 * 24 * 3600,
            outbox_shards: 8,
            outbox_lease_secs: 10,
            node_probe_interval_ms: 1_000,
            node_probe_timeout_ms: 1_000,
        }
    }
}

impl Default for Replication {
    fn default() -> Self {
        Self {
            class: "SimpleStrategy".to_owned(),
            replication_factor: 1,
            datacenters: BTreeMap::new(),
        }
    }
}

impl CassandraConfig {
    /// [`CassandraConfig::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The parsed read/write consistency.
    ///
    /// # Errors
    /// [`CassandraError::Config`] for an unknown level.
    pub fn consistency_level(&self) -> Result<Consistency, CassandraError> {
        parse_consistency(&self.consistency)
    }

    /// The parsed serial consistency.
    ///
    /// # Errors
    /// [`CassandraError::Config`] unless it is `serial` or `local_serial`.
    pub fn serial_consistency_level(&self) -> Result<Consistency, CassandraError> {
        match parse_consistency(&self.serial_consistency)? {
            level @ (Consistency::Serial | Consistency::LocalSerial) => Ok(level),
            _ => Err(CassandraError::Config(
                "serial_consistency must be serial or local_serial".to_owned(),
            )),
        }
    }

    /// The keyspace name, checked to be a plain identifier (it is spliced into CQL).
    ///
    /// # Errors
    /// [`CassandraError::Config`] for anything but letters, digits and underscores.
    pub fn checked_keyspace(&self) -> Result<&str, CassandraError> {
        identifier(&self.keyspace, "keyspace")
    }

    /// The `WITH replication = {…}` map for `CREATE KEYSPACE`.
    ///
    /// # Errors
    /// [`CassandraError::Config`] for an unknown class or bad datacenter names.
    pub fn replication_cql(&self) -> Result<String, CassandraError> {
        match self.replication.class.as_str() {
            "SimpleStrategy" => Ok(format!(
                "{{'class': 'SimpleStrategy', 'replication_factor': {}}}",
                self.replication.replication_factor
            )),
            "NetworkTopologyStrategy" => {
                if self.replication.datacenters.is_empty() {
                    return Err(CassandraError::Config(
                        "NetworkTopologyStrategy needs replication.datacenters".to_owned(),
                    ));
                }
                let mut parts = vec!["'class': 'NetworkTopologyStrategy'".to_owned()];
                for (datacenter, factor) in &self.replication.datacenters {
                    let datacenter = identifier(datacenter, "datacenter")?;
                    parts.push(format!("'{datacenter}': {factor}"));
                }
                Ok(format!("{{{}}}", parts.join(", ")))
            }
            other => Err(CassandraError::Config(format!(
                "replication.class {other:?}: use SimpleStrategy or NetworkTopologyStrategy"
            ))),
        }
    }
}

fn identifier<'a>(name: &'a str, what: &str) -> Result<&'a str, CassandraError> {
    let valid = !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphabetic();
    if valid && (what != "keyspace" || !name.contains('-')) {
        Ok(name)
    } else {
        Err(CassandraError::Config(format!(
            "{what} {name:?} must be letters, digits and underscores"
        )))
    }
}

fn parse_consistency(name: &str) -> Result<Consistency, CassandraError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "serial" => Consistency::Serial,
        "local_serial" => Consistency::LocalSerial,
        "local_one" => Consistency::LocalOne,
        other => {
            return Err(CassandraError::Config(format!(
                "unknown consistency level {other:?}"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_maps_render_for_both_strategies() {
        let mut config = CassandraConfig::default();
        assert_eq!(
            config.replication_cql().unwrap(),
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
        config.replication.class = "NetworkTopologyStrategy".to_owned();
        config.replication.datacenters.insert("dc1".to_owned(), 3);
        assert_eq!(
            config.replication_cql().unwrap(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
        );
        config.replication.datacenters.insert("dc'2".to_owned(), 3);
        assert!(config.replication_cql().is_err());
    }

    #[test]
    fn keyspace_names_cannot_inject_cql() {
        let mut config = CassandraConfig::default();
        assert_eq!(config.checked_keyspace().unwrap(), "chat");
        config.keyspace = "chat; DROP TABLE x".to_owned();
        assert!(config.checked_keyspace().is_err());
        config.keyspace = "chat-dev".to_owned();
        assert!(config.checked_keyspace().is_err());
    }

    #[test]
    fn consistency_levels_parse_and_serial_is_checked() {
        let mut config = CassandraConfig::default();
        assert_eq!(
            config.consistency_level().unwrap(),
            Consistency::LocalQuorum
        );
        assert_eq!(
            config.serial_consistency_level().unwrap(),
            Consistency::LocalSerial
        );
        config.serial_consistency = "quorum".to_owned();
        assert!(config.serial_consistency_level().is_err());
        config.consistency = "most".to_owned();
        assert!(config.consistency_level().is_err());
    }
}
