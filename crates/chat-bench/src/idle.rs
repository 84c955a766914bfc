//! The cost of an idle socket: `sockets` authenticated WebSockets opened straight to one
//! instance (not through nginx, so only the instance's memory moves), held for a while, and
//! the instance's resident memory read before and after. Client sockets are bound to several
//! loopback source addresses (127.0.0.2, .3, …) when one address has too few ephemeral ports.

use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use system_tests::stack::Stack;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::error::BenchError;
use crate::latency::{Latency, Recorder};
use crate::procs::{self, CpuSnapshot, CpuUse, Part};
use crate::ws::{Connection, Dialer};

/// What the idle phase found.
#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    /// The instance measured.
    pub instance: String,
    /// Sockets asked for.
    pub sockets: usize,
    /// Sockets that completed the handshake and got `ready`.
    pub opened: usize,
    /// Handshakes that failed.
    pub failed: usize,
    /// Loopback source addresses used.
    pub source_addresses: Vec<String>,
    /// Instance RSS before opening, KiB.
    pub rss_before_kib: u64,
    /// Instance RSS after holding them, KiB.
    pub rss_after_kib: u64,
    /// (after − before) / opened.
    pub kib_per_socket: f64,
    /// The instance's soft open-file limit, and whether it leaves room for the sockets.
    pub instance_file_limit: Option<u64>,
    /// Whether the instance's limit leaves room for the sockets plus its other files.
    pub instance_limit_suffices: bool,
    /// This process's open-file limit after raising it.
    pub own_file_limit: u64,
    /// Handshake + `ready`, per socket.
    pub connect: Latency,
    /// Sockets opened per second.
    pub opened_per_second: f64,
    /// CPU seconds per process from the first handshake to the second memory reading.
    pub cpu: Vec<CpuUse>,
}

/// Files an instance needs besides client sockets (Cassandra, Redis and Kafka connections,
/// its listener, logs): a generous allowance.
const INSTANCE_OTHER_FILES: u64 = 500;

/// Ephemeral ports this machine hands out per source address
/// (`/proc/sys/net/ipv4/ip_local_port_range`), with a tenth kept back for everything else.
fn ports_per_address() -> usize {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|n| n.parse::<usize>().ok());
            Some((bounds.next()??, bounds.next()??))
        })
        .map_or(28_000, |(low, high)| high.saturating_sub(low) + 1);
    (range * 9 / 10).max(1)
}

/// Opens `sockets` idle sockets on the first running instance and measures its memory.
///
/// # Errors
/// [`BenchError::Setup`] when no instance runs or this process cannot open enough files.
pub async fn run(
    stack: &Stack,
    parts: &[Part],
    sockets: usize,
    hold: Duration,
    handshakes: usize,
    per_address: Option<usize>,
) -> Result<IdleResult, BenchError> {
    let instance = procs::instances()
        .into_iter()
        .next()
        .ok_or_else(|| BenchError::Setup("no instance is running".to_owned()))?;
    let own_file_limit = procs::raise_own_file_limit(sockets as u64 + 1_000);
    if own_file_limit < sockets as u64 + 100 {
        return Err(BenchError::Setup(format!(
            "this process may open {own_file_limit} files, too few for {sockets} sockets \
             (raise the hard limit: ulimit -Hn)"
        )));
    }
    let instance_file_limit = procs::open_file_limit(instance.pid);
    let instance_limit_suffices =
        instance_file_limit.is_none_or(|limit| limit >= sockets as u64 + INSTANCE_OTHER_FILES);
    if !instance_limit_suffices {
        eprintln!(
            "chat-bench: instance-{} may open {instance_file_limit:?} files: too few for \
             {sockets} sockets; handshakes will fail",
            instance.number
        );
    }
    let per_address = per_address.unwrap_or_else(ports_per_address).max(1);
    let addresses = sockets.div_ceil(per_address).max(1);
    let dialers: Vec<Rc<Dialer>> = (0..addresses)
        .map(|i| {
            let last = u8::try_from(2 + i).unwrap_or(u8::MAX);
            Rc::new(Dialer::new(Some(IpAddr::V4(Ipv4Addr::new(
                127, 0, 0, last,
            )))))
        })
        .collect();
    let url = format!("ws://127.0.0.1:{}/ws", instance.port);

    let rss_before_kib = procs::rss_kib(instance.pid)?;
    let cpu_before = CpuSnapshot::take(parts);
    let gate = Rc::new(Semaphore::new(handshakes.max(1)));
    let started = Instant::now();
    let tasks: Vec<_> = (0..sockets)
        .map(|i| {
            let (gate, dialer, url) = (gate.clone(), dialers[i / per_address].clone(), url.clone());
            let token = stack.token(system_tests::user());
            actix_web::rt::spawn(async move {
                let _permit = gate.acquire().await;
                let began = Instant::now();
                dialer
                    .connect(&url, &token)
                    .await
                    .map(|connection| (connection, began.elapsed()))
            })
        })
        .collect();
    let mut open: Vec<Connection> = Vec::with_capacity(sockets);
    let mut connect = Recorder::new();
    let mut failed = 0;
    let mut first_failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok((connection, latency))) => {
                connect.record(latency);
                open.push(connection);
            }
            Ok(Err(error)) => {
                failed += 1;
                first_failure.get_or_insert(error);
            }
            Err(_) => failed += 1,
        }
    }
    let opened_seconds = started.elapsed().as_secs_f64();
    if let Some(error) = first_failure {
        eprintln!("chat-bench: {failed} idle handshakes failed; the first: {error}");
    }
    // The socket tasks answer the instance's pings meanwhile, as idle clients do.
    tokio::time::sleep(hold).await;
    let rss_after_kib = procs::rss_kib(instance.pid)?;
    let cpu = CpuSnapshot::take(parts).since(&cpu_before);
    for connection in &open {
        connection.close();
    }
    let opened = open.len();
    drop(open);
    // Let the instance see the closes before the next phase reads anything.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(IdleResult {
        instance: format!("instance-{}", instance.number),
        sockets,
        opened,
        failed,
        source_addresses: (0..addresses)
            .map(|i| format!("127.0.0.{}", 2 + i))
            .collect(),
        rss_before_kib,
        rss_after_kib,
        kib_per_socket: (rss_after_kib as f64 - rss_before_kib as f64) / opened.max(1) as f64,
        instance_file_limit,
        instance_limit_suffices,
        own_file_limit,
        connect: connect.summary(),
        opened_per_second: opened as f64 / opened_seconds.max(0.001),
        cpu,
    })
}
