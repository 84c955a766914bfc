//! The connection to the cluster, and the few ways this adapter talks over it. Every request
//! goes through [`Db`], which adds what cdrs-tokio lacks: a deadline per request, the configured
//! consistency on every statement, and page-by-page paging with the driver's paging state.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cdrs_tokio::authenticators::StaticPasswordAuthenticatorProvider;
use cdrs_tokio::cluster::connection_pool::ConnectionPoolConfigBuilder;
use cdrs_tokio::cluster::session::{Session, SessionBuilder, TcpSessionBuilder};
use cdrs_tokio::cluster::{
    ClusterMetadata, NodeAddress, NodeTcpConfigBuilder, TcpConnectionManager,
};
use cdrs_tokio::consistency::Consistency;
use cdrs_tokio::frame::Version;
use cdrs_tokio::frame::message_batch::BatchType;
use cdrs_tokio::load_balancing::node_distance_evaluator::TopologyAwareNodeDistanceEvaluator;
use cdrs_tokio::load_balancing::{LoadBalancingStrategy, QueryPlan, Request};
use cdrs_tokio::query::{BatchQueryBuilder, PreparedQuery, QueryValues};
use cdrs_tokio::statement::StatementParamsBuilder;
use cdrs_tokio::transport::TransportTcp;
use cdrs_tokio::types::CBytes;
use cdrs_tokio::types::rows::Row;

use crate::config::CassandraConfig;
use crate::error::CassandraError;
use crate::health::{AvoidUnresponsive, Responsiveness, spawn_prober};

/// The driver session this adapter uses: plain TCP, token- and datacenter-aware routing that
/// sends requests to unresponsive nodes last ([`crate::health`]).
pub type CassandraSession = Session<TransportTcp, TcpConnectionManager, AvoidUnresponsive>;

/// Opens a session to the cluster, using `keyspace` when given, and starts probing its nodes
/// (for as long as the session exists).
///
/// # Errors
/// [`CassandraError`] when no contact point answers within the connect timeout.
pub async fn connect(
    config: &CassandraConfig,
    keyspace: Option<&str>,
) -> Result<Arc<CassandraSession>, CassandraError> {
    let responsiveness = Arc::new(Responsiveness::default());
    let session = Arc::new(
        connect_with(
            config,
            keyspace,
            AvoidUnresponsive::new(responsiveness.clone()),
        )
        .await?,
    );
    spawn_prober(
        Arc::downgrade(&session),
        responsiveness,
        protocol_version(config)?,
        Duration::from_millis(config.node_probe_interval_ms),
        Duration::from_millis(config.node_probe_timeout_ms.max(1)),
    );
    Ok(session)
}

fn protocol_version(config: &CassandraConfig) -> Result<Version, CassandraError> {
    match config.protocol_version {
        4 => Ok(Version::V4),
        5 => Ok(Version::V5),
        other => Err(CassandraError::Config(format!(
            "protocol_version {other}: use 4 or 5"
        ))),
    }
}

/// A session whose every request goes to the same node (the first of the live nodes in address
/// order), for reads that must come from one coordinator: schema agreement compares
/// `system.local` with `system.peers`, and the two only make sense read from the same node.
pub(crate) type OneCoordinatorSession = Session<TransportTcp, TcpConnectionManager, OneCoordinator>;

/// Opens a [`OneCoordinatorSession`].
pub(crate) async fn connect_one_coordinator(
    config: &CassandraConfig,
    keyspace: Option<&str>,
) -> Result<OneCoordinatorSession, CassandraError> {
    connect_with(config, keyspace, OneCoordinator).await
}

/// Routes every request to the same node while it is up: the live nodes sorted by address.
/// cdrs-tokio's own strategies shuffle or rotate, and offer no way to pin a statement to a node.
#[derive(Debug, Default)]
pub(crate) struct OneCoordinator;

impl LoadBalancingStrategy<TransportTcp, TcpConnectionManager> for OneCoordinator {
    fn query_plan(
        &self,
        _request: Option<Request>,
        cluster: &ClusterMetadata<TransportTcp, TcpConnectionManager>,
    ) -> QueryPlan<TransportTcp, TcpConnectionManager> {
        let mut nodes = cluster.unignored_nodes();
        nodes.sort_by_key(|node| node.broadcast_rpc_address());
        QueryPlan::new(nodes)
    }
}

async fn connect_with<LB>(
    config: &CassandraConfig,
    keyspace: Option<&str>,
    load_balancing: LB,
) -> Result<Session<TransportTcp, TcpConnectionManager, LB>, CassandraError>
where
    LB: LoadBalancingStrategy<TransportTcp, TcpConnectionManager> + Send + Sync + 'static,
{
    if config.contact_points.is_empty() {
        return Err(CassandraError::Config("no contact_points".to_owned()));
    }
    let version = protocol_version(config)?;
    let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
    let mut node_config = NodeTcpConfigBuilder::new()
        .with_contact_points(
            config
                .contact_points
                .iter()
                .map(NodeAddress::from)
                .collect(),
        )
        .with_version(version);
    if !config.username.is_empty() {
        node_config = node_config.with_authenticator_provider(Arc::new(
            StaticPasswordAuthenticatorProvider::new(&config.username, &config.password),
        ));
    }
    let node_config = within(config.connect_timeout_ms, node_config.build()).await??;
    let pool = ConnectionPoolConfigBuilder::new()
        .with_local_size(config.pool_size.max(1))
        .with_remote_size(1)
        .with_connect_timeout(Some(connect_timeout))
        .build();
    let mut builder = TcpSessionBuilder::new(load_balancing, node_config)
        .with_connection_pool_config(pool)
        .with_tcp_nodelay(true);
    if !config.local_datacenter.is_empty() {
        builder = builder.with_node_distance_evaluator(Box::new(
            TopologyAwareNodeDistanceEvaluator::new(config.local_datacenter.clone()),
        ));
    }
    if let Some(keyspace) = keyspace {
        builder = builder.with_keyspace(keyspace.to_owned());
    }
    within(config.connect_timeout_ms * 2, builder.build())
        .await?
        .map_err(|error| CassandraError::Session(error.to_string()))
}

async fn within<T>(millis: u64, work: impl Future<Output = T>) -> Result<T, CassandraError> {
    tokio::time::timeout(Duration::from_millis(millis), work)
        .await
        .map_err(|_| CassandraError::Timeout(millis))
}

/// Prepares `cql` on every node the session knows, besides the one that prepared it.
///
/// Cassandra keeps prepared statements per node, and cdrs-tokio prepares on one node only. On a
/// ring, the first execution on each other node answers UNPREPARED; the driver re-prepares and
/// retries, but at most five times over a shuffled replica list, and on a fresh 3-node ring
/// that budget ran out: a session's first writes failed. The Java driver prepares on all nodes
/// for this reason. A node that cannot be reached now is left to the driver's re-prepare.
async fn prepare_on_every_node(
    session: &CassandraSession,
    cql: &str,
    prepared: &PreparedQuery,
    timeout_ms: u64,
) {
    let metadata = session.cluster_metadata();
    for node in metadata.unignored_nodes() {
        let plan = QueryPlan::new(vec![node.clone()]);
        let result = within(
            timeout_ms,
            session.prepare_raw_tw_with_query_plan(cql, None, false, false, false, Some(plan)),
        )
        .await;
        match result {
            Ok(Ok(on_node)) if on_node.id == prepared.id => {}
            Ok(Ok(_)) => tracing::warn!(
                node = %node.broadcast_rpc_address(),
                cql,
                "cassandra: a node prepared the statement under another id (schema changing?)"
            ),
            Ok(Err(error)) => tracing::warn!(
                node = %node.broadcast_rpc_address(),
                error = %chat_domain::Report::of(&error),
                "cassandra: could not prepare on this node; the driver will re-prepare on use"
            ),
            Err(error) => tracing::warn!(
                node = %node.broadcast_rpc_address(),
                error = %chat_domain::Report::of(&error),
                "cassandra: could not prepare on this node; the driver will re-prepare on use"
            ),
        }
    }
}

/// One page of rows and where the next starts.
pub struct RowsPage {
    /// The rows.
    pub rows: Vec<Row>,
    /// The driver's paging state, when more rows remain.
    pub paging_state: Option<Vec<u8>>,
}

/// The session with this adapter's policies applied to every request.
///
/// It also replaces its session when the driver has lost every node: cdrs-tokio marks a node
/// down when its connections fail and, when that was the last node (one node restarted, or the
/// whole cluster), never brings it back ("No nodes available in query plan" for good). After
/// such an error a fresh session is built in the background, at most once per
/// [`RECONNECT_PAUSE`], and swapped in once it connects. Prepared statements carry their CQL,
/// so the new session re-prepares them on first use.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    session: std::sync::RwLock<Arc<CassandraSession>>,
    config: CassandraConfig,
    keyspace: Option<String>,
    consistency: Consistency,
    serial_consistency: Consistency,
    timeout_ms: u64,
    /// When the last replacement was tried.
    last_reconnect: tokio::sync::Mutex<Option<std::time::Instant>>,
}

/// The least time between two attempts to replace the session.
pub const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

impl Db {
    /// Wraps a session connected with `config` (to `keyspace`, if any).
    ///
    /// # Errors
    /// [`CassandraError::Config`] for unknown consistency levels.
    pub fn new(
        session: Arc<CassandraSession>,
        config: &CassandraConfig,
        keyspace: Option<&str>,
    ) -> Result<Self, CassandraError> {
        Ok(Self {
            inner: Arc::new(DbInner {
                session: std::sync::RwLock::new(session),
                config: config.clone(),
                keyspace: keyspace.map(str::to_owned),
                consistency: config.consistency_level()?,
                serial_consistency: config.serial_consistency_level()?,
                timeout_ms: config.request_timeout_ms,
                last_reconnect: tokio::sync::Mutex::new(None),
            }),
        })
    }

    fn session(&self) -> Arc<CassandraSession> {
        self.inner
            .session
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Passes `result` through; when it is an error that means the driver lost its nodes,
    /// starts replacing the session.
    fn watch<T>(&self, result: Result<T, CassandraError>) -> Result<T, CassandraError> {
        if let Err(error) = &result
            && error.is_lost_connection()
        {
            let db = self.clone();
            tokio::spawn(async move { db.reconnect().await });
        }
        result
    }

    async fn reconnect(&self) {
        let Ok(mut last) = self.inner.last_reconnect.try_lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < RECONNECT_PAUSE) {
            return;
        }
        *last = Some(std::time::Instant::now());
        // Every node the old session discovered is a contact point too, the configured ones
        // first: with a single configured contact point (one host name, one seed), its death
        // would otherwise leave nothing to bootstrap from while the rest of the ring serves.
        let mut config = self.inner.config.clone();
        let known = self.session().cluster_metadata();
        for node in known.nodes().values() {
            let address = node.broadcast_rpc_address().to_string();
            if !config.contact_points.contains(&address) {
                config.contact_points.push(address);
            }
        }
        match connect(&config, self.inner.keyspace.as_deref()).await {
            Ok(session) => {
                *self
                    .inner
                    .session
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = session;
                tracing::info!("cassandra: reconnected with a fresh session");
            }
            Err(error) => {
                tracing::warn!(error = %chat_domain::Report::of(&error), "cassandra: still unreachable")
            }
        }
    }

    async fn execute(
        &self,
        statement: &PreparedQuery,
        params: &cdrs_tokio::statement::StatementParams,
    ) -> Result<cdrs_tokio::frame::Envelope, CassandraError> {
        let session = self.session();
        let result = within(
            self.inner.timeout_ms,
            session.exec_with_params(statement, params),
        )
        .await;
        self.watch(result.and_then(|envelope| envelope.map_err(Into::into)))
    }

    /// Prepares a statement.
    ///
    /// # Errors
    /// [`CassandraError`] from the server (e.g. a CQL error) or the timeout.
    pub async fn prepare(&self, cql: &str) -> Result<PreparedQuery, CassandraError> {
        // Right after a migration on a multi-node cluster, the coordinator that prepares may not
        // have the new table yet (schema changes spread by gossip): retry such errors for a
        // while before giving up.
        let deadline = std::time::Instant::now() + SCHEMA_SPREAD;
        loop {
            let session = self.session();
            let result = within(self.inner.timeout_ms, session.prepare(cql)).await;
            match self.watch(result.and_then(|prepared| prepared.map_err(Into::into))) {
                Err(error) if error.is_schema_lag() && std::time::Instant::now() < deadline => {
                    tracing::info!(
                        error = %chat_domain::Report::of(&error),
                        "schema not on this node yet (or migrations not applied: message-service migrate); preparing again"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Ok(prepared) => {
                    prepare_on_every_node(&session, cql, &prepared, self.inner.timeout_ms).await;
                    return Ok(prepared);
                }
                result => return result,
            }
        }
    }

    /// Runs an unprepared statement (schema changes).
    ///
    /// # Errors
    /// [`CassandraError`] from the server or the timeout.
    pub async fn query(&self, cql: &str, timeout_ms: u64) -> Result<Vec<Row>, CassandraError> {
        let session = self.session();
        let result = within(timeout_ms, session.query(cql)).await;
        let envelope = self.watch(result.and_then(|envelope| envelope.map_err(Into::into)))?;
        Ok(envelope.response_body()?.into_rows().unwrap_or_default())
    }

    /// Runs a prepared statement; returns its rows (none for writes). `idempotent` lets the
    /// driver retry it on another node.
    ///
    /// # Errors
    /// [`CassandraError`] from the server or the timeout.
    pub async fn run(
        &self,
        statement: &PreparedQuery,
        values: QueryValues,
        idempotent: bool,
    ) -> Result<Vec<Row>, CassandraError> {
        let params = StatementParamsBuilder::new()
            .with_values(values)
            .with_consistency(self.inner.consistency)
            .idempotent(idempotent)
            .build();
        let envelope = self.execute(statement, &params).await?;
        Ok(envelope.response_body()?.into_rows().unwrap_or_default())
    }

    /// Runs a lightweight transaction (`… IF …`); returns whether it applied and, when it did
    /// not, the existing row the server sent back.
    ///
    /// # Errors
    /// [`CassandraError`] from the server or the timeout.
    pub async fn run_conditional(
        &self,
        statement: &PreparedQuery,
        values: QueryValues,
    ) -> Result<(bool, Option<Row>), CassandraError> {
        let params = StatementParamsBuilder::new()
            .with_values(values)
            .with_consistency(self.inner.consistency)
            .with_serial_consistency(self.inner.serial_consistency)
            .build();
        let envelope = self.execute(statement, &params).await?;
        let row = envelope
            .response_body()?
            .into_rows()
            .and_then(|rows| rows.into_iter().next())
            .ok_or_else(|| CassandraError::BadRow {
                table: "lightweight transaction",
                reason: "no [applied] row".to_owned(),
            })?;
        let applied = crate::rows::get::<bool>(&row, "[applied]", "lightweight transaction")?;
        Ok((applied, (!applied).then_some(row)))
    }

    /// One page of a prepared query: at most `page_size` rows, from `paging_state` on.
    ///
    /// # Errors
    /// [`CassandraError`] from the server (e.g. a paging state it did not make) or the timeout.
    pub async fn page(
        &self,
        statement: &PreparedQuery,
        values: QueryValues,
        page_size: i32,
        paging_state: Option<Vec<u8>>,
    ) -> Result<RowsPage, CassandraError> {
        let mut params = StatementParamsBuilder::new()
            .with_values(values)
            .with_consistency(self.inner.consistency)
            .with_page_size(page_size)
            .idempotent(true);
        if let Some(state) = paging_state {
            params = params.with_paging_state(CBytes::new(state));
        }
        let params = params.build();
        let envelope = self.execute(statement, &params).await?;
        let body = envelope.response_body()?;
        let paging_state = body.as_rows_metadata().and_then(|metadata| {
            let more = metadata
                .flags
                .contains(cdrs_tokio::frame::message_result::RowsMetadataFlags::HAS_MORE_PAGES);
            more.then(|| metadata.paging_state.clone())
                .flatten()
                .and_then(CBytes::into_bytes)
        });
        Ok(RowsPage {
            rows: body.into_rows().unwrap_or_default(),
            paging_state,
        })
    }

    /// Runs prepared statements as one logged batch: all or none are applied.
    ///
    /// # Errors
    /// [`CassandraError`] from the server or the timeout.
    pub async fn logged_batch(
        &self,
        statements: Vec<(&PreparedQuery, QueryValues)>,
    ) -> Result<(), CassandraError> {
        self.batch(BatchType::Logged, statements).await
    }

    /// Runs prepared statements that all write **one partition** as one unlogged batch: one
    /// request and one mutation, applied atomically by the partition's replicas without a
    /// batchlog. (Across partitions an unlogged batch is neither atomic nor cheaper.)
    ///
    /// # Errors
    /// [`CassandraError`] from the server or the timeout.
    pub async fn partition_batch(
        &self,
        statements: Vec<(&PreparedQuery, QueryValues)>,
    ) -> Result<(), CassandraError> {
        self.batch(BatchType::Unlogged, statements).await
    }

    async fn batch(
        &self,
        kind: BatchType,
        statements: Vec<(&PreparedQuery, QueryValues)>,
    ) -> Result<(), CassandraError> {
        let mut batch = BatchQueryBuilder::new()
            .with_batch_type(kind)
            .with_consistency(self.inner.consistency);
        for (statement, values) in statements {
            batch = batch.add_query_prepared(statement, values);
        }
        let batch = batch.build()?;
        let session = self.session();
        let result = within(self.inner.timeout_ms, session.batch(batch)).await;
        self.watch(result.and_then(|envelope| envelope.map_err(Into::into)))?;
        Ok(())
    }
}

/// How long preparing waits for a schema change to reach the coordinator.
const SCHEMA_SPREAD: std::time::Duration = std::time::Duration::from_secs(30);
