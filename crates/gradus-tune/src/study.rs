//! The study: asks the sampler for parameters, runs or hands out trials,
//! consults the pruner, and records everything in the storage. Like argmin's
//! executor, [`Study::optimize`] owns the loop so every sampler gets the same
//! threading, budgets, failure handling and stopping.
//!
//! # Reproducible parallel studies
//!
//! With one thread a seeded study is the same every run: each trial's
//! sampler and pruner see exactly the trials before it, finished. With
//! several threads under [`Schedule::Greedy`] (Optuna's way) a trial sees
//! whatever happened to have finished when it started, so the study varies
//! from run to run. Under [`Schedule::Ordered`] (the default) the `k`-th
//! trial this process asks waits until its asks up to `k − lag` have
//! finished, and it and its pruner see the study as it stood then: those
//! finished trials, and the asks in between as running trials holding
//! only the parameters their joint sample fixed. What each trial sees no
//! longer depends on timing, so the same seed and thread count give the
//! same study every run (the lag grows with the threads, so another count
//! gives another study) — at the cost of threads idling while a long trial
//! holds back the ones after it ([`ordered_lag`]). Trials other
//! processes run in the same study are seen as they stand, so a study
//! shared between processes is never reproducible.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pruners::NopPruner;
use crate::{
    Direction, Distribution, FrozenTrial, InMemoryStorage, Pruner, Sampler, Storage, StudyRecord, TrialState, TuneError,
};

/// A read-only snapshot of a study's trials, given to samplers and pruners —
/// never a lock on the storage.
#[derive(Clone, Debug)]
pub struct StudyView {
    pub direction: Direction,
    /// Every trial, indexed by number.
    pub trials: Arc<Vec<FrozenTrial>>,
}

impl StudyView {
    /// Complete trials, in number order.
    pub fn complete(&self) -> impl Iterator<Item = &FrozenTrial> {
        self.trials.iter().filter(|t| matches!(t.state, TrialState::Complete(_)))
    }

    /// Trials started but not finished (for constant-liar style samplers).
    pub fn running(&self) -> impl Iterator<Item = &FrozenTrial> {
        self.trials.iter().filter(|t| t.state == TrialState::Running)
    }
}

/// How an objective ends a trial other than with a value.
#[derive(Debug)]
pub enum TrialFailure {
    /// The objective stopped because [`Trial::should_prune`] said so.
    Pruned,
    /// The objective failed; the study records the reason and goes on.
    Failed(String),
}

impl<E: std::fmt::Display> From<E> for TrialFailure {
    fn from(e: E) -> Self {
        TrialFailure::Failed(e.to_string())
    }
}

/// The trial an objective is running: suggest parameters, report progress,
/// ask whether to stop.
pub struct Trial<'a> {
    study: &'a Study,
    frozen: FrozenTrial,
    view: StudyView,
    relative: BTreeMap<String, f64>,
    /// Whether the pruner judges by `view` (an ordered schedule's ask) rather
    /// than the study as it stands.
    pinned: bool,
}

impl Trial<'_> {
    pub fn number(&self) -> u64 {
        self.frozen.number
    }

    /// The parameters suggested so far.
    pub fn params(&self) -> &BTreeMap<String, Value> {
        &self.frozen.params
    }

    /// A value for `name` from `distribution`: an enqueued value, the
    /// sampler's joint sample, or an independent one. Suggesting a name again
    /// with the same distribution returns the same value.
    pub fn suggest(&mut self, name: &str, distribution: Distribution) -> Result<Value, TuneError> {
        distribution.validate(name)?;
        if let Some(previous) = self.frozen.distributions.get(name) {
            if *previous != distribution {
                return Err(TuneError::IncompatibleSuggestion {
                    name: name.into(),
                    first: previous.describe(),
                    second: distribution.describe(),
                });
            }
            return Ok(self.frozen.params[name].clone());
        }
        let internal = match self.frozen.fixed_params.get(name) {
            Some(fixed) => distribution.to_internal(name, fixed)?,
            None => match self.relative.get(name) {
                Some(&v) if distribution.contains(v) => v,
                _ => self.study.sampler.sample_independent(&self.view, &self.frozen, name, &distribution),
            },
        };
        let value = distribution.to_external(internal);
        self.study.storage.set_param(self.frozen.id, name, &distribution, &value)?;
        self.frozen.params.insert(name.into(), value.clone());
        self.frozen.distributions.insert(name.into(), distribution);
        Ok(value)
    }

    pub fn suggest_float(&mut self, name: &str, low: f64, high: f64) -> Result<f64, TuneError> {
        Ok(self.suggest(name, Distribution::float(low, high))?.as_f64().expect("a float"))
    }

    pub fn suggest_float_log(&mut self, name: &str, low: f64, high: f64) -> Result<f64, TuneError> {
        Ok(self.suggest(name, Distribution::log_float(low, high))?.as_f64().expect("a float"))
    }

    pub fn suggest_int(&mut self, name: &str, low: i64, high: i64) -> Result<i64, TuneError> {
        Ok(self.suggest(name, Distribution::int(low, high))?.as_i64().expect("an int"))
    }

    pub fn suggest_categorical(&mut self, name: &str, choices: &[&str]) -> Result<String, TuneError> {
        let value = self.suggest(name, Distribution::categorical(choices.iter().copied()))?;
        Ok(value.as_str().expect("a string choice").to_string())
    }

    /// Records the objective's progress at `step` (an epoch, say).
    pub fn report(&mut self, step: u64, value: f64) -> Result<(), TuneError> {
        self.study.storage.report(self.frozen.id, step, value)?;
        self.frozen.intermediate.insert(step, value);
        Ok(())
    }

    /// Records `value` under `name` with the trial (replacing an earlier
    /// one): what the objective measured that is not its value.
    pub fn set_attr(&mut self, name: &str, value: Value) -> Result<(), TuneError> {
        self.study.storage.set_attr(self.frozen.id, name, &value)?;
        self.frozen.attrs.insert(name.to_string(), value);
        Ok(())
    }

    /// Whether the pruner judges this trial unpromising from its reports
    /// (against the study as it stands, or, under [`Schedule::Ordered`], as
    /// it stood when this trial was asked).
    pub fn should_prune(&self) -> bool {
        if self.pinned {
            return self.study.pruner.prune(&self.view, &self.frozen);
        }
        let view = self.study.view().unwrap_or_else(|_| self.view.clone());
        self.study.pruner.prune(&view, &self.frozen)
    }
}

/// How [`Study::optimize`] hands trials to its threads (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schedule {
    /// Each trial waits for the ones it must see, and sees only those: the
    /// same seed and thread count give the same study every run.
    #[default]
    Ordered,
    /// Each trial starts as soon as a thread is free and sees whatever has
    /// finished: no thread idles, but the study varies from run to run.
    Greedy,
}

/// How many asks back a trial must wait for under [`Schedule::Ordered`]
/// with `n_jobs` threads: the `k`-th ask waits for asks up to `k − lag`,
/// `lag = 2·n_jobs − 1`. One thread waits for the previous trial (nothing
/// changes); with more, each thread may start one trial past a long one
/// before it waits, and each ask sees `lag − 1` trials only as running. A
/// longer lag idles threads less but blinds the sampler, and the pruner
/// longer: with 7 on 2 threads, ASHA's first 5 complete trials came later,
/// it pruned fewer trials, and the runs were no faster (BENCHMARKS.md).
pub fn ordered_lag(n_jobs: usize) -> usize {
    2 * n_jobs.max(1) - 1
}

/// The asks of one `optimize` call under [`Schedule::Ordered`].
#[derive(Default)]
struct Asks {
    /// Whether each ask, in order, has finished.
    finished: Vec<bool>,
    /// Each ask as later asks see it while it runs: its number and the
    /// parameters its joint sample fixed, nothing else.
    seen_running: Vec<FrozenTrial>,
    /// Set when a thread ends with an error, so that none waits forever for
    /// a trial that thread left unfinished.
    aborted: bool,
}

impl Asks {
    /// Whether the next ask may go ahead: the ones it must see are finished.
    fn ready(&self, lag: usize) -> bool {
        let next = self.finished.len();
        next < lag || self.finished[..=next - lag].iter().all(|&f| f)
    }

    /// `view` as the next ask must see it: the asks of the last `lag − 1`
    /// shown running.
    fn restrict(&self, view: &StudyView, lag: usize) -> StudyView {
        let next = self.finished.len();
        let mut trials = view.trials.as_ref().clone();
        for k in (next + 1).saturating_sub(lag)..next {
            let i = self.seen_running[k].number as usize;
            if i >= trials.len() {
                trials.resize_with(i + 1, || placeholder(i));
            }
            trials[i] = self.seen_running[k].clone();
        }
        StudyView { direction: view.direction, trials: Arc::new(trials) }
    }
}

/// Trials cached from the storage, refreshed incrementally.
struct Cache {
    cursor: u64,
    trials: Arc<Vec<FrozenTrial>>,
}

/// A hyperparameter search: a sampler, a pruner and a storage joined.
pub struct Study {
    record: StudyRecord,
    storage: Arc<dyn Storage>,
    sampler: Box<dyn Sampler>,
    pruner: Box<dyn Pruner>,
    cache: Mutex<Cache>,
    stopped: AtomicBool,
    schedule: Schedule,
    /// The most trials the study may hold, claimed atomically by every
    /// process that shares it ([`Study::with_budget`]).
    budget: Option<u64>,
    /// How often running trials send a heartbeat, and how long without one
    /// before another process fails a trial as dead ([`Study::with_heartbeat`]).
    heartbeat: (Duration, Duration),
}

impl Study {
    /// Creates a study named `name` in `storage`; the sampler's initial
    /// trials (a grid's points) are enqueued once, here.
    pub fn create(
        storage: Arc<dyn Storage>,
        name: &str,
        direction: Direction,
        sampler: Box<dyn Sampler>,
        pruner: Box<dyn Pruner>,
        settings: &Value,
    ) -> Result<Self, TuneError> {
        let record = storage.create_study(name, direction, settings)?;
        for params in sampler.initial_trials() {
            storage.enqueue_trial(record.id, &params)?;
        }
        Ok(Self::from_record(record, storage, sampler, pruner))
    }

    /// Opens an existing study.
    pub fn load(
        storage: Arc<dyn Storage>,
        name: &str,
        sampler: Box<dyn Sampler>,
        pruner: Box<dyn Pruner>,
    ) -> Result<Self, TuneError> {
        let record = storage.load_study(name)?;
        Ok(Self::from_record(record, storage, sampler, pruner))
    }

    /// A study in memory with no pruner: the quickest start.
    pub fn in_memory(name: &str, direction: Direction, sampler: Box<dyn Sampler>) -> Result<Self, TuneError> {
        Self::create(Arc::new(InMemoryStorage::new()), name, direction, sampler, Box::new(NopPruner), &Value::Null)
    }

    fn from_record(
        record: StudyRecord,
        storage: Arc<dyn Storage>,
        sampler: Box<dyn Sampler>,
        pruner: Box<dyn Pruner>,
    ) -> Self {
        Self {
            record,
            storage,
            sampler,
            pruner,
            cache: Mutex::new(Cache { cursor: 0, trials: Arc::new(Vec::new()) }),
            stopped: AtomicBool::new(false),
            schedule: Schedule::default(),
            budget: None,
            heartbeat: (HEARTBEAT_EVERY, STALE_AFTER),
        }
    }

    /// Replaces the pruner.
    pub fn with_pruner(mut self, pruner: Box<dyn Pruner>) -> Self {
        self.pruner = pruner;
        self
    }

    /// Chooses how [`Study::optimize`] schedules trials on its threads.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sends a heartbeat for each running trial every `every`, and fails as
    /// dead ("worker lost") a running trial without one for `grace`, which
    /// must be longer (defaults: 10 s and 120 s).
    pub fn with_heartbeat(mut self, every: Duration, grace: Duration) -> Result<Self, TuneError> {
        check_heartbeat(every, grace)?;
        self.heartbeat = (every, grace);
        Ok(self)
    }

    /// The heartbeat interval and the grace ([`Study::with_heartbeat`]).
    pub fn heartbeat_settings(&self) -> (Duration, Duration) {
        self.heartbeat
    }

    /// Caps the study at `trials` trials, all processes together: a trial
    /// starts only if its number is below the cap, decided in the storage
    /// in one step, so two processes with the same cap never run more.
    pub fn with_budget(mut self, trials: u64) -> Self {
        self.budget = Some(trials);
        self
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    pub fn direction(&self) -> Direction {
        self.record.direction
    }

    pub fn record(&self) -> &StudyRecord {
        &self.record
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// An up-to-date snapshot of the trials (reading only what changed).
    pub fn view(&self) -> Result<StudyView, TuneError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let changed = self.storage.trials_since(self.record.id, cache.cursor)?;
        if !changed.trials.is_empty() {
            let trials = Arc::make_mut(&mut cache.trials);
            for t in changed.trials {
                let i = t.number as usize;
                if i >= trials.len() {
                    trials.resize_with(i + 1, || placeholder(i));
                }
                trials[i] = t;
            }
        }
        cache.cursor = changed.cursor;
        Ok(StudyView { direction: self.record.direction, trials: cache.trials.clone() })
    }

    /// Enqueues a trial whose parameters are fixed in advance; they are
    /// evaluated before any sampled ones.
    pub fn enqueue_trial(&self, params: BTreeMap<String, Value>) -> Result<u64, TuneError> {
        self.storage.enqueue_trial(self.record.id, &params)
    }

    /// Starts a trial for a caller that runs the objective itself.
    pub fn ask(&self) -> Result<Trial<'_>, TuneError> {
        self.next_trial(None)?.ok_or(TuneError::Exhausted(self.record.name.clone()))
    }

    /// Finishes a trial from the objective's result: a value completes it
    /// (NaN or infinity fails it), a failure fails or prunes it.
    pub fn tell(&self, trial: Trial<'_>, result: Result<f64, TrialFailure>) -> Result<FrozenTrial, TuneError> {
        self.finish(trial.frozen.id, result)
    }

    /// Finishes trial `number` (the ask/tell of a caller in another process).
    pub fn tell_number(&self, number: u64, result: Result<f64, TrialFailure>) -> Result<FrozenTrial, TuneError> {
        let trial = self.storage.trial(self.record.id, number)?;
        if trial.state.is_finished() {
            return Err(TuneError::TrialFinished { trial: number, state: trial.state.name().into() });
        }
        if let Ok(v) = result
            && !v.is_finite()
        {
            return Err(TuneError::InvalidValue { trial: number, reason: format!("{v} is not a finite number") });
        }
        self.finish(trial.id, result)
    }

    fn finish(&self, id: u64, result: Result<f64, TrialFailure>) -> Result<FrozenTrial, TuneError> {
        // Why it failed goes with it (a value that is not a number, too).
        let reason = match &result {
            Err(TrialFailure::Failed(reason)) => Some(reason.clone()),
            Ok(v) if !v.is_finite() => Some(format!("the objective returned {v}")),
            _ => None,
        };
        if let Some(reason) = reason {
            self.storage.set_attr(id, crate::trial::FAIL_REASON, &Value::from(reason))?;
        }
        let state = match result {
            Ok(v) if v.is_finite() => TrialState::Complete(v),
            Ok(_) | Err(TrialFailure::Failed(_)) => TrialState::Fail,
            Err(TrialFailure::Pruned) => TrialState::Pruned,
        };
        self.storage.finish_trial(id, state)
    }

    /// Runs `objective` for up to `n_trials` trials (and until `timeout`), on
    /// `n_jobs` threads, handed out by the study's [`Schedule`]. A trial
    /// whose objective errs, returns NaN or panics fails and the study goes
    /// on. Stops early when [`Study::stop`] is called or a closed sampler (a
    /// grid) has nothing left.
    pub fn optimize<F>(
        &self,
        objective: F,
        n_trials: u64,
        timeout: Option<Duration>,
        n_jobs: usize,
    ) -> Result<(), TuneError>
    where
        F: Fn(&mut Trial<'_>) -> Result<f64, TrialFailure> + Sync,
    {
        self.optimize_with_callback(objective, n_trials, timeout, n_jobs, |_, _| {})
    }

    /// [`Study::optimize`] that calls `callback` after each finished trial.
    pub fn optimize_with_callback<F, C>(
        &self,
        objective: F,
        n_trials: u64,
        timeout: Option<Duration>,
        n_jobs: usize,
        callback: C,
    ) -> Result<(), TuneError>
    where
        F: Fn(&mut Trial<'_>) -> Result<f64, TrialFailure> + Sync,
        C: Fn(&Study, &FrozenTrial) + Sync,
    {
        if n_jobs == 0 {
            return Err(TuneError::InvalidArgument { name: "n_jobs", reason: "must be at least 1".into() });
        }
        self.stopped.store(false, Ordering::SeqCst);
        // Trials a crashed worker left running (no heartbeat for a long
        // while) are failed, so they neither linger nor block a grid; those
        // of a process on this machine that has ended, at once.
        self.storage.fail_stale_trials(self.record.id, self.heartbeat.1.as_secs_f64())?;
        self.fail_trials_of_ended_processes()?;
        let started = AtomicU64::new(0);
        let deadline = timeout.map(|t| Instant::now() + t);
        let running: Mutex<Vec<u64>> = Mutex::new(Vec::new());
        let finished_all = AtomicBool::new(false);
        let out_of_time = || self.stopped.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d);
        let (asks, ask_done) = (Mutex::new(Asks::default()), Condvar::new());
        let lag = ordered_lag(n_jobs);
        // The next trial and, under the ordered schedule, its place among the asks.
        let next = || -> Result<Option<(Trial<'_>, Option<usize>)>, TuneError> {
            if self.schedule == Schedule::Greedy {
                return Ok(self.next_trial(None)?.map(|t| (t, None)));
            }
            let mut asks = asks.lock().unwrap_or_else(|e| e.into_inner());
            while !asks.ready(lag) && !asks.aborted && !out_of_time() {
                asks = ask_done.wait_timeout(asks, Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
            }
            if asks.aborted || out_of_time() {
                return Ok(None);
            }
            let Some(trial) = self.next_trial(Some((&mut *asks, lag)))? else { return Ok(None) };
            Ok(Some((trial, Some(asks.finished.len() - 1))))
        };
        let worker = |slot: usize| -> Result<(), TuneError> {
            loop {
                if out_of_time() || started.fetch_add(1, Ordering::SeqCst) >= n_trials {
                    return Ok(());
                }
                let Some((mut trial, ask)) = next()? else { return Ok(()) };
                // Which process runs it, so that a restart on this machine can
                // tell the trials of a process that has ended, and in which of
                // its `n_jobs` threads (a report's timeline of workers).
                if let Some(host) = host_name() {
                    let worker = serde_json::json!({"host": host, "pid": std::process::id(), "slot": slot});
                    trial.set_attr(WORKER, worker)?;
                }
                let id = trial.frozen.id;
                running.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                let result = match catch_unwind(AssertUnwindSafe(|| objective(&mut trial))) {
                    Ok(result) => result,
                    Err(panic) => Err(TrialFailure::Failed(panic_message(&panic))),
                };
                running.lock().unwrap_or_else(|e| e.into_inner()).retain(|&r| r != id);
                let finished = self.tell(trial, result)?;
                if let Some(k) = ask {
                    asks.lock().unwrap_or_else(|e| e.into_inner()).finished[k] = true;
                    ask_done.notify_all();
                }
                callback(self, &finished);
            }
        };
        // A thread that errs (or panics outside the objective) may leave its
        // trial unfinished: the others must not wait for it.
        let worker = |slot: usize| {
            struct AbortOnExit<'a>(&'a Mutex<Asks>, &'a Condvar, bool);
            impl Drop for AbortOnExit<'_> {
                fn drop(&mut self) {
                    if !self.2 {
                        self.0.lock().unwrap_or_else(|e| e.into_inner()).aborted = true;
                        self.1.notify_all();
                    }
                }
            }
            let mut guard = AbortOnExit(&asks, &ask_done, false);
            let result = worker(slot);
            guard.2 = result.is_ok();
            result
        };
        // A heartbeat for every trial this process is running, so that other
        // processes can tell a slow trial from a dead one.
        let heartbeat = || {
            let mut last = Instant::now();
            while !finished_all.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() >= self.heartbeat.0 {
                    last = Instant::now();
                    for &id in running.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                        // A trial that finished meanwhile refuses the beat; that is fine.
                        let _ = self.storage.heartbeat(id);
                    }
                }
            }
        };
        std::thread::scope(|scope| {
            let beats = scope.spawn(heartbeat);
            let worker = &worker;
            let handles: Vec<_> = (0..n_jobs).map(|slot| scope.spawn(move || worker(slot))).collect();
            let results = handles.into_iter().map(|h| h.join().unwrap_or(Ok(()))).collect::<Result<Vec<()>, _>>();
            finished_all.store(true, Ordering::SeqCst);
            let _ = beats.join();
            results
        })?;
        Ok(())
    }

    /// The next trial; `None` when a closed sampler (a grid) has no waiting
    /// trial left. Under [`Schedule::Ordered`], `ordered` holds the asks so
    /// far and the lag: the trial is asked with the view they allow (the
    /// caller has waited until they do) and recorded among them.
    fn next_trial(&self, ordered: Option<(&mut Asks, usize)>) -> Result<Option<Trial<'_>>, TuneError> {
        let view = self.view()?;
        let frozen = match self.budget {
            Some(budget) => match self.storage.start_trial_within(self.record.id, budget, self.sampler.is_closed())? {
                Some(t) => t,
                None => return Ok(None),
            },
            None if self.sampler.is_closed() => match self.storage.claim_waiting_trial(self.record.id)? {
                Some(t) => t,
                None => return Ok(None),
            },
            None => self.storage.create_trial(self.record.id)?,
        };
        let Some((asks, lag)) = ordered else {
            let relative = self.sampler.sample_relative(&view, &frozen);
            return Ok(Some(Trial { study: self, frozen, view, relative, pinned: false }));
        };
        let view = asks.restrict(&view, lag);
        let relative = self.sampler.sample_relative(&view, &frozen);
        let mut seen = FrozenTrial::new(frozen.id, frozen.number, TrialState::Running);
        let fixed = if relative.is_empty() { Vec::new() } else { view.intersection_space() };
        for (name, distribution) in fixed {
            if let Some(&v) = relative.get(&name).filter(|&&v| distribution.contains(v)) {
                seen.params.insert(name.clone(), distribution.to_external(v));
                seen.distributions.insert(name, distribution);
            }
        }
        asks.finished.push(false);
        asks.seen_running.push(seen);
        Ok(Some(Trial { study: self, frozen, view, relative, pinned: true }))
    }

    /// Fails, as "worker lost", the running trials that a process on this
    /// machine started and that process has ended (a crash, a SIGKILL):
    /// they can wait for no heartbeat. Another process may fail one first;
    /// that is fine.
    fn fail_trials_of_ended_processes(&self) -> Result<(), TuneError> {
        let Some(host) = host_name() else { return Ok(()) };
        for t in self.trials()?.iter().filter(|t| t.state == TrialState::Running) {
            let Some(worker) = t.attrs.get(WORKER) else { continue };
            let (Some(on), Some(pid)) = (worker["host"].as_str(), worker["pid"].as_u64()) else { continue };
            if local_process_ended(on, pid) != Some(true) {
                continue;
            }
            let reason = format!("{} (process {pid} on {host} ended)", crate::trial::WORKER_LOST_PREFIX);
            if self.storage.set_attr(t.id, crate::trial::FAIL_REASON, &Value::from(reason)).is_ok() {
                let _ = self.storage.finish_trial(t.id, TrialState::Fail);
            }
        }
        Ok(())
    }

    /// Waits until no trial of the study is running — other processes'
    /// trials finish, or are failed as "worker lost" when their process has
    /// ended or sent no heartbeat for the grace — calling `waiting` with the
    /// number still running about once a second.
    pub fn wait_for_running_trials(&self, waiting: impl Fn(usize)) -> Result<(), TuneError> {
        let mut last_said = None::<Instant>;
        loop {
            self.storage.fail_stale_trials(self.record.id, self.heartbeat.1.as_secs_f64())?;
            self.fail_trials_of_ended_processes()?;
            let running = self.trials()?.iter().filter(|t| t.state == TrialState::Running).count();
            if running == 0 {
                return Ok(());
            }
            if last_said.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                waiting(running);
                last_said = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Asks running `optimize` loops to finish their current trials and stop.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Every trial, in number order.
    pub fn trials(&self) -> Result<Vec<FrozenTrial>, TuneError> {
        Ok(self.view()?.trials.as_ref().clone())
    }

    /// The complete trial with the best value (the earliest among equals).
    pub fn best_trial(&self) -> Result<Option<FrozenTrial>, TuneError> {
        let view = self.view()?;
        let direction = self.direction();
        Ok(view
            .complete()
            .fold(None::<&FrozenTrial>, |best, t| match best {
                Some(b) if !direction.better(t.value().unwrap_or(f64::NAN), b.value().unwrap_or(f64::NAN)) => Some(b),
                _ => Some(t),
            })
            .cloned())
    }

    /// The best complete trial's value (Optuna's `study.best_value`), `None`
    /// before any trial completes.
    pub fn best_value(&self) -> Result<Option<f64>, TuneError> {
        Ok(self.best_trial()?.and_then(|t| t.value()))
    }
}

/// Refuses a heartbeat interval of 0, or a grace not longer than it (a
/// live trial would be failed as dead between two beats).
pub fn check_heartbeat(every: Duration, grace: Duration) -> Result<(), TuneError> {
    if every.is_zero() || grace <= every {
        return Err(TuneError::InvalidArgument {
            name: "heartbeat",
            reason: format!(
                "the grace ({} s) must be longer than the heartbeat interval ({} s), which must be above 0",
                grace.as_secs_f64(),
                every.as_secs_f64()
            ),
        });
    }
    Ok(())
}

/// The attribute naming the process that runs a trial, and its thread
/// there: `{"host", "pid", "slot"}` (slot 0 … `n_jobs` - 1).
pub const WORKER: &str = "worker";

/// This machine's name, where Linux tells it (`None` elsewhere: ended
/// processes are then found by their missing heartbeats alone).
/// Read once: it is asked for at every trial.
pub(crate) fn host_name() -> Option<String> {
    static NAME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
        Some(name.trim().to_string()).filter(|n| !n.is_empty())
    })
    .clone()
}

/// Whether process `pid` on `host` has ended, when that can be told here:
/// `Some` for another process of this machine (Linux's /proc), `None` for
/// this process or one elsewhere (whose heartbeats tell instead).
pub(crate) fn local_process_ended(host: &str, pid: u64) -> Option<bool> {
    let here = host_name().is_some_and(|h| h == host) && pid != u64::from(std::process::id());
    here.then(|| !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// How often running trials send a heartbeat.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// How long without a heartbeat before a running trial counts as dead.
const STALE_AFTER: Duration = Duration::from_secs(120);

/// A stand-in for a trial number not yet seen (a gap another process fills).
fn placeholder(number: usize) -> FrozenTrial {
    FrozenTrial::new(u64::MAX, number as u64, TrialState::Waiting)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
    format!("the objective panicked: {}", text.unwrap_or_else(|| "(no message)".into()))
}
