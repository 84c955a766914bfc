//! Keeps requests away from a node that stopped answering.
//!
//! A node that hangs (a long GC pause, a network partition, SIGSTOP) keeps its sockets open, so
//! cdrs-tokio 9.0.2 still counts it as up and keeps choosing it as coordinator: every request
//! sent there waits for the request timeout. Its heartbeat does not help: it awaits the answer
//! to OPTIONS without a deadline. Measured on a 3-node ring with one node paused under traffic:
//! 60 appends in 60 s from four writers, against several hundred with the node killed.
//!
//! So each session gets a prober that sends OPTIONS to every node every `node_probe_interval_ms`
//! and waits at most `node_probe_timeout_ms`, and a load-balancing strategy that puts the nodes
//! that failed their last probe at the end of every query plan (behind the responsive ones, never
//! out of it: when every node looks unresponsive, requests still go somewhere).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use cdrs_tokio::cluster::session::Session;
use cdrs_tokio::cluster::topology::Node;
use cdrs_tokio::cluster::{ClusterMetadata, TcpConnectionManager};
use cdrs_tokio::frame::{Envelope, Version};
use cdrs_tokio::load_balancing::{
    LoadBalancingStrategy, QueryPlan, Request, TopologyAwareLoadBalancingStrategy,
};
use cdrs_tokio::transport::{CdrsTransport, TransportTcp};

/// The nodes that failed their last probe, by address.
#[derive(Debug, Default)]
pub(crate) struct Responsiveness {
    unresponsive: RwLock<HashSet<SocketAddr>>,
}

impl Responsiveness {
    fn is_unresponsive(&self, node: SocketAddr) -> bool {
        self.unresponsive
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&node)
    }

    /// Records a probe's outcome; returns whether the node changed state.
    fn record(&self, node: SocketAddr, answered: bool) -> bool {
        let mut unresponsive = self
            .unresponsive
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if answered {
            unresponsive.remove(&node)
        } else {
            unresponsive.insert(node)
        }
    }
}

/// cdrs-tokio's token- and datacenter-aware strategy, with the nodes that failed their last
/// probe moved to the end of each plan.
pub struct AvoidUnresponsive {
    inner: TopologyAwareLoadBalancingStrategy<TransportTcp, TcpConnectionManager>,
    responsiveness: Arc<Responsiveness>,
}

impl AvoidUnresponsive {
    pub(crate) fn new(responsiveness: Arc<Responsiveness>) -> Self {
        Self {
            inner: TopologyAwareLoadBalancingStrategy::new(None, false),
            responsiveness,
        }
    }
}

impl LoadBalancingStrategy<TransportTcp, TcpConnectionManager> for AvoidUnresponsive {
    fn query_plan(
        &self,
        request: Option<Request>,
        cluster: &ClusterMetadata<TransportTcp, TcpConnectionManager>,
    ) -> QueryPlan<TransportTcp, TcpConnectionManager> {
        let mut plan = self.inner.query_plan(request, cluster);
        // A stable sort keeps the inner strategy's order (replicas first) within each group.
        plan.nodes.sort_by_key(|node| {
            self.responsiveness
                .is_unresponsive(node.broadcast_rpc_address())
        });
        plan
    }
}

/// Probes every node of `session` while it exists.
pub(crate) fn spawn_prober<LB>(
    session: Weak<Session<TransportTcp, TcpConnectionManager, LB>>,
    responsiveness: Arc<Responsiveness>,
    version: Version,
    interval: Duration,
    timeout: Duration,
) where
    LB: LoadBalancingStrategy<TransportTcp, TcpConnectionManager> + Send + Sync + 'static,
{
    if interval.is_zero() {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(session) = session.upgrade() else {
                return;
            };
            let nodes: Vec<Arc<Node<TransportTcp, TcpConnectionManager>>> = session
                .cluster_metadata()
                .nodes()
                .values()
                .filter(|node| !node.is_ignored())
                .cloned()
                .collect();
            drop(session);
            let mut probes = tokio::task::JoinSet::new();
            for node in nodes {
                probes.spawn(async move {
                    let answered = probe(&node, version, timeout).await;
                    (node.broadcast_rpc_address(), answered)
                });
            }
            while let Some(Ok((node, answered))) = probes.join_next().await {
                if responsiveness.record(node, answered) {
                    if answered {
                        tracing::info!(%node, "cassandra: node answers again");
                    } else {
                        tracing::warn!(
                            %node,
                            timeout_ms = timeout.as_millis(),
                            "cassandra: node does not answer; sending requests to others first"
                        );
                    }
                }
            }
        }
    });
}

/// Whether `node` answers OPTIONS within `timeout`.
async fn probe(
    node: &Arc<Node<TransportTcp, TcpConnectionManager>>,
    version: Version,
    timeout: Duration,
) -> bool {
    let options = Envelope::new_req_options(version);
    let answer = tokio::time::timeout(timeout, async {
        let connection = node.persistent_connection().await?;
        connection.write_envelope(&options, false).await
    })
    .await;
    matches!(answer, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_changes_state_only_when_its_probe_outcome_changes() {
        let responsiveness = Responsiveness::default();
        let node: SocketAddr = "127.0.0.1:9042".parse().unwrap_or_else(|_| unreachable!());
        assert!(!responsiveness.is_unresponsive(node));
        assert!(!responsiveness.record(node, true), "already responsive");
        assert!(responsiveness.record(node, false));
        assert!(responsiveness.is_unresponsive(node));
        assert!(!responsiveness.record(node, false), "still unresponsive");
        assert!(responsiveness.record(node, true));
        assert!(!responsiveness.is_unresponsive(node));
    }
}
