//! The results of one run and how they are written: `results.json` (everything),
//! `results.md` (the tables a reader compares) and `latency.svg` (see [`crate::svg`]).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::drain::DrainResult;
use crate::e2e::StepResult;
use crate::error::BenchError;
use crate::idle::IdleResult;
use crate::latency::Latency;
use crate::procs::CpuUse;

/// One store phase's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StoreResult {
    /// `raw`, `claim`, `append` or `batched`.
    pub phase: String,
    /// Concurrent writers.
    pub writers: usize,
    /// Operations that succeeded.
    pub operations: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Wall time.
    pub seconds: f64,
    /// Successful operations per second.
    pub rate: f64,
    /// Per operation.
    pub latency: Latency,
    /// CPU seconds per process over the phase.
    pub cpu: Vec<CpuUse>,
}

/// Rates relative to the raw insert: what each layer of the write path costs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ratios {
    /// append rate / raw rate.
    pub append_raw: Option<f64>,
    /// claim rate / raw rate.
    pub claim_raw: Option<f64>,
    /// append rate / batched rate: the new write path against the old one, same run.
    pub append_batched: Option<f64>,
    /// best end-to-end acknowledged rate / raw rate.
    pub e2e_raw: Option<f64>,
    /// drain rate / best end-to-end acknowledged rate: issue #11 asks for at least 2.
    pub drain_e2e: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// When the run started (UTC, RFC 3339).
    pub started_at: String,
    /// The command line that produced it.
    pub command: String,
    /// Whether it was a smoke run (figures then mean nothing).
    pub smoke: bool,
    /// The Cassandra keyspace the store phases used (dropped at the end).
    pub keyspace: Option<String>,
    /// raw, claim, append.
    pub store: Vec<StoreResult>,
    /// One per offered load.
    pub e2e: Vec<StepResult>,
    /// The idle-socket phase.
    pub idle: Option<IdleResult>,
    /// The drain phase.
    pub drain: Option<DrainResult>,
    /// Rates relative to raw.
    pub ratios: Ratios,
    /// Phases that stopped with an error, and why.
    pub failures: Vec<String>,
}

impl Results {
    /// Fills [`Results::ratios`] from the phases that ran.
    pub fn compute_ratios(&mut self) {
        let rate = |phase: &str| {
            self.store
                .iter()
                .find(|result| result.phase == phase)
                .map(|result| result.rate)
        };
        let raw = rate("raw").filter(|raw| *raw > 0.0);
        let best_e2e = self
            .e2e
            .iter()
            .map(|step| step.acked_per_second)
            .fold(None, |best: Option<f64>, rate| {
                Some(best.map_or(rate, |b| b.max(rate)))
            });
        self.ratios = Ratios {
            append_raw: raw.zip(rate("append")).map(|(raw, append)| append / raw),
            claim_raw: raw.zip(rate("claim")).map(|(raw, claim)| claim / raw),
            append_batched: rate("batched")
                .filter(|batched| *batched > 0.0)
                .zip(rate("append"))
                .map(|(batched, append)| append / batched),
            e2e_raw: raw.zip(best_e2e).map(|(raw, e2e)| e2e / raw),
            drain_e2e: self
                .drain
                .as_ref()
                .zip(best_e2e.filter(|best| *best > 0.0))
                .map(|(drain, best)| drain.drain_rate / best),
        };
    }

    /// Writes `results.json`, `results.md` and `latency.svg` into `dir`.
    ///
    /// # Errors
    /// [`BenchError::Io`] when the folder cannot be written.
    pub fn write(&self, dir: &Path) -> Result<(), BenchError> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("results.json"), serde_json::to_vec_pretty(self)?)?;
        std::fs::write(dir.join("results.md"), self.markdown())?;
        std::fs::write(
            dir.join("latency.svg"),
            crate::svg::latency_chart(&self.e2e),
        )?;
        Ok(())
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# chat-bench {}\n", self.started_at);
        let _ = writeln!(md, "```sh\n{}\n```\n", self.command);
        if self.smoke {
            md.push_str("Smoke run: the figures below only show that every phase ran.\n\n");
        }
        for failure in &self.failures {
            let _ = writeln!(md, "**Failed:** {failure}\n");
        }
        if !self.store.is_empty() {
            md.push_str("## Store phases (Cassandra)\n\n");
            md.push_str("| phase | writers | ops | errors | ops/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n");
            md.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
            for result in &self.store {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {:.0} | {} |",
                    result.phase,
                    result.writers,
                    result.operations,
                    result.errors,
                    result.rate,
                    percentiles(&result.latency)
                );
            }
            md.push('\n');
        }
        let ratio = |value: Option<f64>| value.map_or("–".to_owned(), |v| format!("{v:.2}"));
        let _ = writeln!(
            md,
            "Ratios of rates: append/raw **{}**, claim/raw **{}**, e2e/raw **{}** (best e2e load), \
             append/batched **{}** (new write path / old, when `batched` ran).\n",
            ratio(self.ratios.append_raw),
            ratio(self.ratios.claim_raw),
            ratio(self.ratios.e2e_raw),
            ratio(self.ratios.append_batched)
        );
        // Idle first: the default order runs it before the e2e loads.
        if let Some(idle) = &self.idle {
            idle_table(&mut md, idle);
        }
        if !self.e2e.is_empty() {
            self.e2e_tables(&mut md);
        }
        if let Some(drain) = &self.drain {
            drain_table(&mut md, drain, self.ratios.drain_e2e);
        }
        self.cpu_table(&mut md);
        md
    }

    fn e2e_tables(&self, md: &mut String) {
        md.push_str("## End to end, through nginx over WebSocket\n\n");
        md.push_str(
            "acked/s: acknowledged messages from the first send to the last ack (an open \
             loop beyond capacity acknowledges less than it offers). Open-loop latency runs \
             from the scheduled send time.\n\n",
        );
        md.push_str(
            "| load | acked/s | latency | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n",
        );
        md.push_str("|---|---|---|---|---|---|---|---|\n");
        for step in &self.e2e {
            let label = step.load.label();
            let rows = [
                ("send → ack", &step.ack),
                ("send → delivery, same instance", &step.delivery_same),
                ("send → delivery, across instances", &step.delivery_cross),
                ("ack → event in Kafka", &step.event_lag),
            ];
            for (i, (what, latency)) in rows.into_iter().enumerate() {
                let (load, rate) = if i == 0 {
                    (label.clone(), format!("{:.0}", step.acked_per_second))
                } else {
                    (String::new(), String::new())
                };
                let _ = writeln!(
                    md,
                    "| {load} | {rate} | {what} | {} |",
                    percentiles(latency)
                );
            }
        }
        md.push_str("\n### Loss\n\n");
        md.push_str("| load | sent | acked | unacked | resent | live | from history | **lost** | one event id | no event | 2+ event ids | repeated records | backlog at load end | backlog after settle |\n");
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for step in &self.e2e {
            let loss = &step.loss;
            let backlog = |backlog: &std::collections::BTreeMap<String, i64>| {
                // -1 marks an instance whose /metrics did not answer.
                // Every instance counts the whole outbox (all shards), so the readings are
                // of one backlog: the largest is the latest, never their sum.
                if backlog.values().any(|n| *n < 0) {
                    "?".to_owned()
                } else {
                    backlog.values().max().copied().unwrap_or(0).to_string()
                }
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} | {} |",
                step.load.label(),
                step.sent,
                loss.acked,
                step.unacknowledged,
                step.resent,
                loss.delivered_live,
                loss.from_history,
                loss.lost,
                loss.kafka_ok,
                loss.kafka_missing,
                loss.kafka_conflicting,
                loss.kafka_repeats,
                backlog(&step.backlog_at_load_end),
                backlog(&step.backlog_after_settle)
            );
        }
        md.push('\n');
    }

    fn cpu_table(&self, md: &mut String) {
        let mut rows: Vec<(String, &[CpuUse])> = Vec::new();
        for result in &self.store {
            rows.push((result.phase.clone(), &result.cpu));
        }
        if let Some(idle) = &self.idle {
            rows.push(("idle".to_owned(), &idle.cpu));
        }
        for step in &self.e2e {
            rows.push((format!("e2e {}", step.load.label()), &step.cpu));
        }
        if let Some(drain) = &self.drain {
            rows.push(("drain (Kafka back → last event)".to_owned(), &drain.cpu));
        }
        let Some((_, first)) = rows.first() else {
            return;
        };
        let columns: Vec<String> = first.iter().map(|use_| use_.process.clone()).collect();
        md.push_str("## CPU seconds per process (utime + stime over the phase)\n\n");
        let _ = writeln!(md, "| phase | {} |", columns.join(" | "));
        let _ = writeln!(md, "|---|{}", "---|".repeat(columns.len()));
        for (phase, cpu) in rows {
            let cells: Vec<String> = columns
                .iter()
                .map(|column| {
                    cpu.iter()
                        .find(|use_| &use_.process == column)
                        .map_or("–".to_owned(), |use_| format!("{:.2}", use_.seconds))
                })
                .collect();
            let _ = writeln!(md, "| {phase} | {} |", cells.join(" | "));
        }
        md.push('\n');
    }
}

fn idle_table(md: &mut String, idle: &IdleResult) {
    md.push_str("## Idle sockets\n\n");
    md.push_str("| instance | sockets | opened | failed | source addresses | RSS before MiB | RSS after MiB | **KiB per socket** | instance file limit | opened/s | connect p50 ms | p99 ms | max ms |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let limit = idle
        .instance_file_limit
        .map_or("unlimited".to_owned(), |limit| {
            let verdict = if idle.instance_limit_suffices {
                "enough"
            } else {
                "too few"
            };
            format!("{limit} ({verdict})")
        });
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {:.1} | {:.1} | **{:.1}** | {limit} | {:.0} | {:.2} | {:.2} | {:.2} |\n",
        idle.instance,
        idle.sockets,
        idle.opened,
        idle.failed,
        idle.source_addresses.len(),
        idle.rss_before_kib as f64 / 1024.0,
        idle.rss_after_kib as f64 / 1024.0,
        idle.kib_per_socket,
        idle.opened_per_second,
        idle.connect.p50_ms,
        idle.connect.p99_ms,
        idle.connect.max_ms,
    );
}

fn drain_table(md: &mut String, drain: &DrainResult, drain_e2e: Option<f64>) {
    md.push_str(
        "## Drain: the outbox relays after Kafka was down

",
    );
    md.push_str(
        "send rate: acknowledged messages per second of a closed loop sent while Kafka was \
         stopped. drain rate: those messages' events per second, from Kafka answering again \
         to the last one read. The backlog gauge is refreshed every few seconds, so it is \
         approximate.\n\n",
    );
    md.push_str("| messages | pairs | sent | acked | send rate (acked/s, Kafka down) | backlog when Kafka returned | Kafka start s | events seen | time to drain s | drain rate (events/s) | **drain/send** | **drain/best e2e** | lost | one event id | no event | 2+ event ids | repeated records | timed out |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let ratio = |value: Option<f64>| value.map_or("–".to_owned(), |v| format!("{v:.2}"));
    let backlog = if drain.backlog_at_kafka_return.values().any(|n| *n < 0) {
        "?".to_owned()
    } else {
        // Each instance counts the whole outbox: one backlog, read by each.
        drain
            .backlog_at_kafka_return
            .values()
            .max()
            .copied()
            .unwrap_or(0)
            .to_string()
    };
    let loss = &drain.loss;
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {:.0} | {backlog} | {:.1} | {} | {:.1} | {:.0} | **{}** | **{}** | {} | {} | {} | {} | {} | {} |\n",
        drain.messages,
        drain.pairs,
        drain.sent,
        loss.acked,
        drain.send_rate,
        drain.kafka_start_seconds,
        drain.events_seen,
        drain.drain_seconds,
        drain.drain_rate,
        ratio(drain.drain_send),
        ratio(drain_e2e),
        loss.lost,
        loss.kafka_ok,
        loss.kafka_missing,
        loss.kafka_conflicting,
        loss.kafka_repeats,
        if drain.timed_out { "**yes**" } else { "no" },
    );
}

fn percentiles(latency: &Latency) -> String {
    if latency.count == 0 {
        return "– | – | – | – | –".to_owned();
    }
    format!(
        "{:.2} | {:.2} | {:.2} | {:.2} | {:.2}",
        latency.p50_ms, latency.p90_ms, latency.p99_ms, latency.p999_ms, latency.max_ms
    )
}
