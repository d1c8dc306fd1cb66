//! The migration schedule of a PikiwiDB run: slots of the workload's keys move between servers
//! (sync or async by the run's mode) at random intervals, each with its scenario's twist
//! (`SLOTSRELOAD` first, a cancel in the middle, the source killed as it deletes and restarted).
//! A command that stops answering ends the schedule (pika has one migrator per server, and a hung
//! one blocks the next); a migration that keeps failing until its deadline stays open, and the
//! schedule goes on with the other slots.

use super::nemesis::PikaNemesis;
use super::scenario::PikaScenario;
use super::step::{Outcome, Step};
use super::strike::Mode;
use crate::nemesis::error::NemesisError;
use crate::term::{ok, warn};
use checker::{Anomaly, AnomalyEvent, History, Process};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use workloads::codis::MigrationMode;

/// How long the kill scenario waits for the source to start deleting the slot's keys before it
/// SIGKILLs it anyway.
const DELETE_WAIT_MAX: Duration = Duration::from_secs(2);
/// How often the kill scenario strikes one migration's source (each kill lands between a key's
/// two deletes only now and then).
const STRIKES_PER_MIGRATION: usize = 3;
/// How long the killed server stays down.
const RESTART_AFTER: Duration = Duration::from_millis(300);
/// How long after an async migration starts the cancel scenario cancels it.
const CANCEL_AFTER: Duration = Duration::from_millis(5);

/// What the schedule will do, fixed before it starts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Codis slots of the workload's keys: the ones worth moving.
    pub slots: Vec<u16>,
    /// `SLOTSMGRTTAGSLOT` (sync routing) or `SLOTSMGRTTAGSLOT-ASYNC` (semi-async routing).
    pub mode: MigrationMode,
    /// Mean pause between migrations.
    pub interval: Duration,
    /// The scenario's twist, if any.
    pub scenario: Option<PikaScenario>,
    /// Seeds the choices.
    pub seed: u64,
}

/// What the schedule did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Migrations that ended with the slot flipped.
    pub done: usize,
    /// Keys those moved.
    pub keys_moved: u64,
    /// Steps that stopped answering.
    pub stuck: Vec<Step>,
    /// Steps that failed with an error.
    pub failed: Vec<Step>,
    /// Reloads, cancels, kills and restarts done.
    pub faults: usize,
}

impl Summary {
    fn add(&mut self, step: Step) {
        match &step.outcome {
            Outcome::Done { keys_moved } if step.f.starts_with("pika-migrate") => {
                self.done += 1;
                self.keys_moved += keys_moved;
            }
            Outcome::Done { .. } => self.faults += 1,
            Outcome::Stuck(_) => self.stuck.push(step),
            Outcome::Failed(_) => self.failed.push(step),
        }
    }
}

/// Runs migrations until `deadline`, or until one is stuck.
pub async fn run(plan: &Plan, nemesis: &PikaNemesis, deadline: Instant) -> Summary {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed ^ 0x9e37_79b9);
    let mut summary = Summary::default();
    let addrs = nemesis.cluster.addrs();
    let mode = match plan.mode {
        MigrationMode::Sync => Mode::Sync,
        MigrationMode::SemiAsync => Mode::Async,
    };
    while !summary.stuck.iter().any(hung) {
        let pause = plan.interval.mul_f64(rng.random_range(0.5..1.5));
        if Instant::now() + pause + Duration::from_secs(1) >= deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        let table = nemesis
            .table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let closed: Vec<u16> = (plan.slots.iter().copied())
            .filter(|&s| table.route(s).migrating_to.is_none())
            .collect();
        let Some(&slot) = closed.choose(&mut rng) else {
            break;
        };
        let from = table.route(slot).owner;
        let others: Vec<&String> = addrs.iter().filter(|a| a.as_str() != &*from).collect();
        let Some(&to) = others.choose(&mut rng) else {
            break;
        };
        // Drawn for every scenario so that a seed keeps its schedule; no scenario uses it now
        // (pika-kill strikes the source: see `migrate`).
        let _ = rng.random_bool(0.5);
        for step in migrate(nemesis, plan.scenario, mode, slot, (&from, to)).await {
            summary.add(step);
        }
    }
    summary
}

/// PikiwiDB's nemesis as the run pipeline drives it ([`crate::nemesis::Nemesis`]): the `plan`
/// carried out by `nemesis` until the run's deadline (its verbs do not watch the stop token; a
/// killed server is restarted within its own strike, so nothing is left to heal).
pub struct Scheduled {
    /// Which slots migrate, how and how often.
    pub plan: Plan,
    /// The servers, the slot table and the history the migrations act on.
    pub nemesis: PikaNemesis,
    /// Fires when the schedule has ended (also when it panicked), for whoever waits for it.
    pub done: CancellationToken,
}

impl crate::nemesis::Nemesis for Scheduled {
    type Summary = Summary;

    async fn run(self, _stop: CancellationToken, deadline: Instant) -> Summary {
        let _done = self.done.clone().drop_guard();
        run(&self.plan, &self.nemesis, deadline).await
    }

    async fn heal(&self) -> Result<(), NemesisError> {
        Ok(())
    }

    fn report(summary: &Summary) {
        report(summary);
    }
}

/// Whether a stuck step is a command that never answered.
fn hung(step: &Step) -> bool {
    matches!(&step.outcome, Outcome::Stuck(s) if s.hung())
}

/// One migration of `slot` with the scenario's twist; every step it took.
async fn migrate(
    nemesis: &PikaNemesis,
    scenario: Option<PikaScenario>,
    mode: Mode,
    slot: u16,
    (from, to): (&str, &str),
) -> Vec<Step> {
    let plain = || async {
        match mode {
            Mode::Sync => nemesis.migrate_sync(slot, from, to).await,
            Mode::Async => nemesis.migrate_async(slot, from, to).await,
        }
    };
    match scenario {
        Some(PikaScenario::Hll) => {
            let reload = nemesis.slots_reload(from).await;
            let reloaded = matches!(reload.outcome, Outcome::Done { .. });
            let mut steps = vec![reload];
            if reloaded {
                steps.push(plain().await);
            }
            steps
        }
        Some(PikaScenario::Cancel) => {
            let cancel = async {
                tokio::time::sleep(CANCEL_AFTER).await;
                nemesis.cancel_async(from).await
            };
            let (migration, cancel) = tokio::join!(plain(), cancel);
            vec![cancel, migration]
        }
        // The source: the bug is in how it deletes what the target acknowledged.
        Some(PikaScenario::Kill) => {
            let ends = (from, to);
            let times = (DELETE_WAIT_MAX, RESTART_AFTER);
            (nemesis.strike_on_delete(slot, ends, STRIKES_PER_MIGRATION, times)).await
        }
        _ => vec![plain().await],
    }
}

/// Prints what the schedule did.
pub fn report(summary: &Summary) {
    ok(&format!(
        "nemesis: {} migrations done ({} keys moved), {} reloads/cancels/kills/restarts, {} failed, \
         {} stuck",
        summary.done,
        summary.keys_moved,
        summary.faults,
        summary.failed.len(),
        summary.stuck.len()
    ));
    for s in &summary.failed {
        if let Outcome::Failed(e) = &s.outcome {
            warn(&format!("{} ({}) failed: {e}", s.f, s.command));
        }
    }
    for s in &summary.stuck {
        if let Outcome::Stuck(st) = &s.outcome {
            let why = match st.hung() {
                true => format!("{} did not answer", st.command),
                false => format!(
                    "{}; last error: {}",
                    st.command,
                    st.last_error.as_deref().unwrap_or("none")
                ),
            };
            warn(&format!(
                "{} of slot {} is stuck: {why}",
                s.f,
                s.slot.map_or("-".into(), |n| n.to_string()),
            ));
        }
    }
}

/// A `stuck-migration` anomaly per step that stopped answering, naming the command, the slot and
/// the step's `end` event.
pub fn anomalies(summary: &Summary, history: &History) -> Vec<Anomaly> {
    summary
        .stuck
        .iter()
        .filter_map(|step| {
            let Outcome::Stuck(st) = &step.outcome else {
                return None;
            };
            let event = end_event(history, step)?;
            let line = checker::op::line_of(history, event);
            let slot = step.slot.map_or("-".into(), |n| n.to_string());
            let how = match st.hung() {
                true => format!(
                    "stopped answering: {} got no reply within the command timeout",
                    st.command
                ),
                false if st.failing() => "failed on every call".to_string(),
                false => "did not finish by its deadline".to_string(),
            };
            Some(Anomaly {
                class: "stuck-migration".into(),
                keys: Vec::new(),
                events: vec![AnomalyEvent { event, line }],
                explanation: format!(
                    "{} of slot {slot} from {} to {} ({}) {how} after {} ms{}{} (line {line}); \
                     slotcheck stopped waiting and left the slot migrating",
                    step.f,
                    step.from.as_deref().unwrap_or("?"),
                    step.to.as_deref().unwrap_or("?"),
                    step.command,
                    st.elapsed.as_millis(),
                    st.remaining
                        .map(|n| format!(" with {n} keys still in the source's slot"))
                        .unwrap_or_default(),
                    st.last_error
                        .as_deref()
                        .map(|e| format!("; last error: {e}"))
                        .unwrap_or_default(),
                ),
                data: json!({"slot": step.slot, "from": step.from, "to": step.to,
                             "f": step.f, "stuck_command": st.command}),
                context: step.slot.map(|s| json!({ "slot": s })),
                cause: Some(checker::Cause::new(
                    checker::CauseKind::Migration,
                    "a pika migration command hung or kept failing",
                )),
            })
        })
        .collect()
}

/// The position of `step`'s `end` event in `history`.
fn end_event(history: &History, step: &Step) -> Option<usize> {
    history.events.iter().rposition(|e| {
        e.process == Process::Nemesis
            && e.f == step.f
            && e.value.get("phase").and_then(Value::as_str) == Some("end")
            && e.value.get("slot").and_then(Value::as_u64) == step.slot.map(u64::from)
    })
}
