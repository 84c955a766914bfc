//! # chat-bench
//!
//! The benchmark tool of chat-message-service (issue #11): one run against the local stack
//! (`deploy/local/up.sh`) measures every layer of the write path and prints how they compare:
//! the raw insert ceiling, the dedup claim, the store's append, the whole path through nginx
//! at several offered loads (with a loss check and the ack→Kafka lag), and the memory of an
//! idle socket; on request (`--phases drain`), how fast the outbox relays drain a backlog left
//! while Kafka was stopped. Every phase also reports CPU seconds per process of the stack. `--smoke` runs
//! every phase tiny and fails on any lost message, never on speed: `deploy/local/test.sh`
//! runs it (without the drain phase, which stops Kafka). How to run it and what each phase measures: `docs/benchmarks.md`.
//!
//! ## Layout
//! - [`cli`]: the flags and their defaults; `--smoke` sizes.
//! - [`cassandra`]: the store phases (raw, claim, append) in a keyspace of their own, dropped
//!   at the end.
//! - [`e2e`]: one offered load through nginx (closed or open loop), and its loss check.
//! - [`drain`]: Kafka stopped, a backlog sent, Kafka started; the relays' drain rate.
//! - [`kafka`]: a topic watcher that notes when each message's event appears.
//! - [`idle`]: idle sockets on one instance and its memory per socket.
//! - [`ws`]: a WebSocket client split into a writer and a reader task.
//! - [`procs`]: the stack's processes from their pid files; CPU, memory, file limits.
//! - [`latency`]: HDR histograms and their percentiles.
//! - [`report`]: `results.json` and `results.md`.
//! - [`svg`]: `latency.svg`, drawn by hand.
//! - [`error`]: what stops a phase.
//!
//! It reuses the whole-system tests' view of the stack (`system_tests::stack::Stack`: the
//! stack's secrets for tokens, history through nginx) and never changes the stack.
#![forbid(unsafe_code)]

mod cassandra;
mod cli;
mod drain;
mod e2e;
mod error;
mod idle;
mod kafka;
mod latency;
mod procs;
mod report;
mod svg;
mod ws;

use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser as _;
use system_tests::stack::Stack;
use time::OffsetDateTime;

use crate::cassandra::{Fixture, Limit, StorePhase};
use crate::cli::{Args, Phase};
use crate::error::BenchError;
use crate::procs::{CpuSnapshot, Part};
use crate::report::{Results, StoreResult};

/// Open files this process may need: the idle phase's sockets plus the e2e loads' (the
/// development machine allows 20 000 per process).
const WANTED_FILES: u64 = 20_000;

#[actix_web::main]
async fn main() -> ExitCode {
    let args = Args::parse().smoke_sized();
    let now = OffsetDateTime::now_utc();
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = now
            .format(time::macros::format_description!(
                "[year][month][day]-[hour][minute][second]"
            ))
            .unwrap_or_else(|_| now.unix_timestamp().to_string());
        PathBuf::from("target/chat-bench").join(stamp)
    });
    procs::raise_own_file_limit(WANTED_FILES);
    let stack = Stack::from_env();
    let parts = procs::stack_parts();
    let mut results = Results {
        started_at: now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        smoke: args.smoke,
        keyspace: None,
        store: Vec::new(),
        e2e: Vec::new(),
        idle: None,
        drain: None,
        ratios: report::Ratios::default(),
        failures: Vec::new(),
    };

    let mut fixture: Option<Rc<Fixture>> = None;
    // The store keyspace goes as soon as the last store phase is done: compacting its rows
    // would otherwise load Cassandra during the e2e phases.
    let last_store_phase = args.phases.iter().rposition(|phase| {
        matches!(
            phase,
            Phase::Raw | Phase::Claim | Phase::Append | Phase::Batched
        )
    });
    for (index, phase) in args.phases.clone().into_iter().enumerate() {
        eprintln!("chat-bench: phase {phase:?}");
        let outcome = match phase {
            Phase::Raw => {
                store_phase(
                    &args,
                    &stack,
                    &parts,
                    &mut fixture,
                    StorePhase::Raw,
                    &mut results,
                )
                .await
            }
            Phase::Claim => {
                store_phase(
                    &args,
                    &stack,
                    &parts,
                    &mut fixture,
                    StorePhase::Claim,
                    &mut results,
                )
                .await
            }
            Phase::Append => {
                store_phase(
                    &args,
                    &stack,
                    &parts,
                    &mut fixture,
                    StorePhase::Append,
                    &mut results,
                )
                .await
            }
            Phase::Batched => {
                store_phase(
                    &args,
                    &stack,
                    &parts,
                    &mut fixture,
                    StorePhase::Batched,
                    &mut results,
                )
                .await
            }
            Phase::E2e => e2e_phase(&args, &stack, &parts, &mut results).await,
            Phase::Idle => idle::run(
                &stack,
                &parts,
                args.idle_sockets,
                Duration::from_secs(args.idle_seconds),
                args.idle_handshakes,
                args.idle_per_address,
            )
            .await
            .map(|idle| results.idle = Some(idle)),
            Phase::Drain => drain::run(
                &target(&args, &stack, &parts),
                args.drain_pairs,
                args.drain_messages,
                Duration::from_secs(args.settle_seconds),
            )
            .await
            .map(|drain| results.drain = Some(drain)),
        };
        if let Err(error) = outcome {
            eprintln!("chat-bench: phase {phase:?} failed: {error}");
            results.failures.push(format!("{phase:?}: {error}"));
        }
        if Some(index) == last_store_phase
            && let Some(fixture) = fixture.take()
            && let Err(error) = fixture.drop_keyspace().await
        {
            eprintln!(
                "chat-bench: keyspace {} left behind: {error}",
                fixture.keyspace()
            );
        }
    }

    results.compute_ratios();
    let markdown = results.markdown();
    println!("{markdown}");
    if let Err(error) = results.write(&out) {
        eprintln!("chat-bench: could not write {}: {error}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("chat-bench: results in {}", out.display());
    verdict(&results)
}

/// Failure when a phase stopped with an error, or (the smoke run's promise) when any
/// acknowledged message was lost or its event missing or doubled.
fn verdict(results: &Results) -> ExitCode {
    let problems = problems(results);
    for problem in &problems {
        eprintln!("chat-bench: {problem}");
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Everything that makes a run fail; speed never does.
fn problems(results: &Results) -> Vec<String> {
    let mut problems: Vec<String> = results
        .e2e
        .iter()
        .filter(|step| !step.loss.is_clean())
        .map(|step| format!("LOSS in {}: {:?}", step.load.label(), step.loss))
        .collect();
    if let Some(drain) = &results.drain {
        if !drain.loss.is_clean() {
            problems.push(format!("LOSS in drain: {:?}", drain.loss));
        }
        if drain.timed_out {
            problems.push(format!(
                "drain timed out: {} of {} events seen",
                drain.events_seen, drain.loss.acked
            ));
        }
        if drain.loss.acked == 0 {
            problems.push("the drain load acknowledged nothing".to_owned());
        }
    }
    if results.smoke && results.e2e.iter().any(|step| step.loss.acked == 0) {
        problems.push("a smoke load acknowledged nothing".to_owned());
    }
    problems.extend(
        results
            .failures
            .iter()
            .map(|failure| format!("failed: {failure}")),
    );
    problems
}

async fn store_phase(
    args: &Args,
    stack: &Stack,
    parts: &[Part],
    fixture: &mut Option<Rc<Fixture>>,
    phase: StorePhase,
    results: &mut Results,
) -> Result<(), BenchError> {
    let fixture = match fixture {
        Some(fixture) => fixture.clone(),
        None => {
            let created = Rc::new(
                Fixture::create(
                    &stack.settings.cassandra,
                    &stack.settings.crypto,
                    args.chats,
                    args.text_bytes,
                )
                .await?,
            );
            results.keyspace = Some(created.keyspace().to_owned());
            fixture.insert(created).clone()
        }
    };
    let limit = match args.store_count {
        Some(count) => Limit::Count(count),
        None => Limit::For(args.store_duration()),
    };
    let before = CpuSnapshot::take(parts);
    let outcome = cassandra::run(&fixture, phase, args.writers, limit).await;
    let cpu = CpuSnapshot::take(parts).since(&before);
    let seconds = outcome.elapsed.as_secs_f64();
    results.store.push(StoreResult {
        phase: format!("{phase:?}").to_lowercase(),
        writers: args.writers,
        operations: outcome.done,
        errors: outcome.errors,
        first_error: outcome.first_error,
        seconds,
        rate: outcome.done as f64 / seconds.max(0.001),
        latency: outcome.latency.summary(),
        cpu,
    });
    Ok(())
}

async fn e2e_phase(
    args: &Args,
    stack: &Stack,
    parts: &[Part],
    results: &mut Results,
) -> Result<(), BenchError> {
    let target = target(args, stack, parts);
    let loads = args
        .pairs
        .iter()
        .map(|pairs| e2e::Load::Closed { pairs: *pairs })
        .chain(args.rates.iter().map(|rate| e2e::Load::Open {
            pairs: args.rate_pairs,
            rate: *rate,
        }));
    for (step, load) in loads.enumerate() {
        eprintln!("chat-bench: e2e {}", load.label());
        let result = e2e::run_step(
            &target,
            load,
            Duration::from_secs(args.e2e_seconds),
            Duration::from_secs(args.settle_seconds),
            step,
        )
        .await?;
        results.e2e.push(result);
    }
    Ok(())
}

/// The stack as the loads use it; Kafka at `CHAT_TEST_KAFKA`, else the stack's settings.
fn target<'a>(args: &Args, stack: &'a Stack, parts: &'a [Part]) -> e2e::Target<'a> {
    let brokers = std::env::var("CHAT_TEST_KAFKA")
        .map(|brokers| brokers.split(',').map(str::to_owned).collect())
        .unwrap_or_else(|_| stack.settings.kafka.brokers.clone());
    e2e::Target {
        stack,
        brokers,
        parts,
        text_bytes: args.text_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2e::{Load, Loss, StepResult};

    fn step(loss: Loss) -> StepResult {
        StepResult {
            load: Load::Closed { pairs: 1 },
            sent: loss.acked,
            unacknowledged: 0,
            resent: 0,
            cross_pairs: 0,
            seconds: 1.0,
            ack_seconds: 1.0,
            acked_per_second: 1.0,
            ack: Default::default(),
            delivery_same: Default::default(),
            delivery_cross: Default::default(),
            event_lag: Default::default(),
            loss,
            backlog_at_load_end: Default::default(),
            backlog_after_settle: Default::default(),
            cpu: Vec::new(),
        }
    }

    fn results(steps: Vec<StepResult>) -> Results {
        Results {
            started_at: String::new(),
            command: String::new(),
            smoke: true,
            keyspace: None,
            store: Vec::new(),
            e2e: steps,
            idle: None,
            drain: None,
            ratios: report::Ratios::default(),
            failures: Vec::new(),
        }
    }

    #[test]
    fn a_lost_message_or_a_doubled_event_fails_the_run_a_repeated_record_does_not() {
        let clean = Loss {
            acked: 10,
            delivered_live: 9,
            from_history: 1,
            kafka_ok: 10,
            kafka_repeats: 3,
            ..Loss::default()
        };
        assert!(problems(&results(vec![step(clean.clone())])).is_empty());
        for lossy in [
            Loss {
                lost: 1,
                ..clean.clone()
            },
            Loss {
                kafka_missing: 1,
                ..clean.clone()
            },
            Loss {
                kafka_conflicting: 1,
                ..clean.clone()
            },
        ] {
            assert_eq!(problems(&results(vec![step(lossy)])).len(), 1);
        }
    }

    #[test]
    fn a_drain_that_timed_out_or_lost_an_event_fails_the_run_a_slow_one_does_not() {
        let drain = |timed_out: bool, kafka_missing: u64| drain::DrainResult {
            messages: 10,
            pairs: 1,
            sent: 10,
            send_seconds: 1.0,
            send_rate: 10.0,
            kafka_start_seconds: 1.0,
            backlog_at_kafka_return: Default::default(),
            events_seen: 10 - kafka_missing,
            drain_seconds: 100.0,
            drain_rate: 0.1,
            drain_send: Some(0.01),
            timed_out,
            loss: Loss {
                acked: 10,
                delivered_live: 10,
                kafka_ok: 10 - kafka_missing,
                kafka_missing,
                ..Loss::default()
            },
            cpu: Vec::new(),
        };
        let with = |drain| Results {
            drain: Some(drain),
            ..results(Vec::new())
        };
        assert!(problems(&with(drain(false, 0))).is_empty());
        assert_eq!(problems(&with(drain(true, 0))).len(), 1);
        assert_eq!(problems(&with(drain(true, 1))).len(), 2);
    }

    #[test]
    fn a_smoke_load_that_acknowledged_nothing_fails() {
        assert_eq!(problems(&results(vec![step(Loss::default())])).len(), 1);
    }

    #[test]
    fn the_report_renders_with_nothing_measured() {
        let empty = results(Vec::new());
        assert!(empty.markdown().contains("Ratios"));
        assert!(crate::svg::latency_chart(&empty.e2e).contains("not run"));
    }
}
