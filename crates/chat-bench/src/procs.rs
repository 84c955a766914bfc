//! The stack's processes as `/proc` sees them: found from the pid files the `deploy/local`
//! scripts write (so another stack on the same machine is never counted), CPU seconds from
//! `/proc/<pid>/stat`, resident memory from `/proc/<pid>/status`, the open-file limit from
//! `/proc/<pid>/limits`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::BenchError;

/// One part of the stack: a label and its processes (nginx is a master and its workers).
#[derive(Debug, Clone)]
pub struct Part {
    /// `instance-1`, `cassandra`, `redis`, `kafka`, `nginx`, `chat-bench`.
    pub label: String,
    pids: Vec<u32>,
    /// Whether the workers of `pids` count too (nginx forks them after reading its pid file).
    with_children: bool,
}

/// An instance of the service: its number, port and pid.
#[derive(Debug, Clone, Copy)]
pub struct Instance {
    /// `instance-<number>`.
    pub number: usize,
    /// Its own port (not nginx's).
    pub port: u16,
    /// Its process.
    pub pid: u32,
}

/// The running instances, from `deploy/local/stack.sh instances` ("I PORT PID", PID "-" when
/// stopped).
///
/// # Errors
/// None: a stopped instance is left out.
pub fn instances() -> Vec<Instance> {
    system_tests::stack::stack_script(&["instances"])
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(Instance {
                number: fields.first()?.parse().ok()?,
                port: fields.get(1)?.parse().ok()?,
                pid: fields.get(2)?.parse().ok()?,
            })
        })
        .collect()
}

/// Where a `deploy/local` script keeps its data: `$variable`, else its default under
/// `${XDG_DATA_HOME:-$HOME/.local/share}/chat-message-service/`.
fn home(variable: &str, default: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    let data = std::env::var_os("XDG_DATA_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share"),
        PathBuf::from,
    );
    data.join("chat-message-service").join(default)
}

fn read_pid(file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// The pids in `pid_name` of every node folder under `home` (Cassandra's `n1/pid`, Redis's
/// `n7001/redis.pid`).
fn node_pids(home: &Path, pid_name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(home) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| read_pid(&entry.path().join(pid_name)))
        .collect();
    pids.sort_unstable();
    pids
}

/// Every part of the running stack, plus this process.
pub fn stack_parts() -> Vec<Part> {
    let mut parts: Vec<Part> = instances()
        .into_iter()
        .map(|instance| Part {
            label: format!("instance-{}", instance.number),
            pids: vec![instance.pid],
            with_children: false,
        })
        .collect();
    let part = |label: &str, pids: Vec<u32>, with_children: bool| Part {
        label: label.to_owned(),
        pids,
        with_children,
    };
    parts.push(part(
        "cassandra",
        node_pids(&home("CHAT_CASSANDRA_HOME", "cassandra"), "pid"),
        false,
    ));
    parts.push(part(
        "redis",
        node_pids(&home("CHAT_REDIS_HOME", "redis-cluster"), "redis.pid"),
        false,
    ));
    let kafka = home("CHAT_KAFKA_HOME", "kafka").join("pid");
    parts.push(part("kafka", read_pid(&kafka).into_iter().collect(), false));
    let nginx = home("CHAT_STACK_HOME", "stack").join("nginx/nginx.pid");
    parts.push(part("nginx", read_pid(&nginx).into_iter().collect(), true));
    parts.push(part("chat-bench", vec![std::process::id()], false));
    for part in &parts {
        if part.pids.is_empty() {
            eprintln!(
                "chat-bench: no process found for {} (its CPU reads 0)",
                part.label
            );
        }
    }
    parts
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces), so index
/// 0 is field 3 (state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// utime + stime of `pid`, in clock ticks (fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    stat_fields(pid)
        .map(|fields| {
            let field = |index: usize| -> u64 {
                fields
                    .get(index)
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0)
            };
            field(11) + field(12)
        })
        .unwrap_or(0)
}

/// The children of `parent` (field 4, the parent pid).
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            stat_fields(*pid)
                .and_then(|fields| fields.get(1).and_then(|ppid| ppid.parse::<u32>().ok()))
                == Some(parent)
        })
        .collect()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds used so far by each part.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    seconds: BTreeMap<String, f64>,
}

impl CpuSnapshot {
    /// Reads every part now. nginx's workers are found anew each time (one may have been
    /// replaced); a worker that exited between two snapshots takes its time with it.
    pub fn take(parts: &[Part]) -> Self {
        let per_second = ticks_per_second();
        let seconds = parts
            .iter()
            .map(|part| {
                let mut pids = part.pids.clone();
                if part.with_children {
                    for pid in &part.pids {
                        pids.extend(children(*pid));
                    }
                }
                let ticks: u64 = pids.iter().map(|pid| cpu_ticks(*pid)).sum();
                (part.label.clone(), ticks as f64 / per_second)
            })
            .collect();
        Self { seconds }
    }

    /// CPU seconds each part used between `before` and `self`.
    pub fn since(&self, before: &Self) -> Vec<CpuUse> {
        self.seconds
            .iter()
            .map(|(label, after)| CpuUse {
                process: label.clone(),
                seconds: (after - before.seconds.get(label).copied().unwrap_or(0.0)).max(0.0),
            })
            .collect()
    }
}

/// CPU seconds one part used during a phase.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    /// The part's label.
    pub process: String,
    /// utime + stime over the phase.
    pub seconds: f64,
}

/// Resident memory of `pid` (`VmRSS`), KiB.
///
/// # Errors
/// [`BenchError::Io`] when the process is gone.
pub fn rss_kib(pid: u32) -> Result<u64, BenchError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| BenchError::Setup(format!("no VmRSS in /proc/{pid}/status")))
}

/// The soft open-file limit of `pid` (`Max open files` in `/proc/<pid>/limits`); `None` for
/// unlimited or unreadable.
pub fn open_file_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Raises this process's soft open-file limit to `wanted` (or its hard limit, if lower);
/// returns the limit now in force.
pub fn raise_own_file_limit(wanted: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let target = wanted.min(hard);
    if limit.current.is_some_and(|current| current >= target) {
        return limit.current.unwrap_or(target);
    }
    let raised = Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => target,
        Err(error) => {
            eprintln!("chat-bench: could not raise the open-file limit to {target}: {error}");
            limit.current.unwrap_or(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_memory_and_a_file_limit() {
        let pid = std::process::id();
        let mut spin = 0u64;
        for i in 0..5_000_000u64 {
            spin = spin.wrapping_add(i * i);
        }
        assert!(spin > 0);
        assert!(stat_fields(pid).is_some_and(|fields| fields.len() > 12));
        assert!(rss_kib(pid).is_ok_and(|kib| kib > 0));
        assert!(open_file_limit(pid).is_some());
    }
}
