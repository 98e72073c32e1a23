//! A role in a study that one process holds at a time, such as finalising
//! it (retraining and saving the final model once its trials are done) when
//! several processes, on several machines, share the study.
//!
//! The claim is a study attribute set by compare-and-swap
//! ([`Storage::swap_study_attr`]): `{"host", "pid", "round", "beat", "done",
//! "released", "note"}`.
//! Whoever's value is stored holds the role. The holder renews `beat` every
//! heartbeat interval; a claim whose holder has ended (a process on this
//! machine that no longer exists, or no beat for the study's grace) or that
//! was released, or one of an earlier round (a smaller budget), may be taken
//! over. A claim marked `done` for this round or a later one is final.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::study::{host_name, local_process_ended};
use crate::trial::now;
use crate::{Storage, Study, TuneError};

/// A claim as stored, as [`Study::claim_role`] writes it: a stored value
/// without one of the required fields, or with one more, is an error, not
/// a default (only `released` and `note` may be left out: not released, no note).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Claim {
    host: String,
    pid: u64,
    /// The round claimed for (say, the study's budget).
    round: u64,
    /// When the holder last renewed it (seconds since the Unix epoch).
    beat: f64,
    done: bool,
    /// Given up by a holder whose work failed: free to take.
    #[serde(default)]
    released: bool,
    /// What the holder made, once done.
    #[serde(default)]
    note: Value,
}

impl Claim {
    fn parse(value: &Value, study: &str, role: &str) -> Result<Self, TuneError> {
        serde_json::from_value(value.clone()).map_err(|e| {
            TuneError::Storage(format!("study '{study}': the claim on '{role}' is not one gradus wrote ({e}): {value}"))
        })
    }

    fn value(&self) -> Value {
        serde_json::to_value(self).expect("a claim is JSON")
    }

    fn holder(&self) -> Holder {
        Holder { host: self.host.clone(), pid: self.pid, done: self.done, note: self.note.clone() }
    }
}

/// Who holds a role another process asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Holder {
    pub host: String,
    pub pid: u64,
    /// Whether the holder has done its work (and `note` says what it made).
    pub done: bool,
    pub note: Value,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} on {}", self.pid, self.host)
    }
}

/// The outcome of [`Study::claim_role`].
pub enum Claimed {
    /// This process holds the role until [`HeldRole::finish`] (or drop, which
    /// releases it).
    Mine(HeldRole),
    /// Another process holds it, or has done it.
    Theirs(Holder),
}

/// A role this process holds; a thread renews its claim every heartbeat
/// interval until it is finished or dropped.
pub struct HeldRole {
    storage: Arc<dyn Storage>,
    study: u64,
    name: String,
    /// The claim as stored.
    claim: Arc<Mutex<Claim>>,
    stop: Arc<AtomicBool>,
    beats: Option<JoinHandle<()>>,
    finished: bool,
}

impl HeldRole {
    /// Marks the role done, with `note` (what was made, and where), so that
    /// no other process does it again for this round.
    pub fn finish(mut self, note: Value) -> Result<(), TuneError> {
        self.stop_beating();
        self.finished = true;
        let done = self.replace(|c| Claim { done: true, beat: now(), note, ..c.clone() })?;
        match done {
            Ok(()) => Ok(()),
            Err(after) => {
                let by = after.map_or("another process".into(), |c| c.holder().to_string());
                Err(TuneError::Storage(format!(
                    "the role '{}' was taken over by {by} (this process sent no heartbeat for too long)",
                    self.name
                )))
            }
        }
    }

    /// Swaps the stored claim for `change` of it; `Err` with the claim
    /// stored instead when another process changed it.
    fn replace(&self, change: impl FnOnce(&Claim) -> Claim) -> Result<Result<(), Option<Claim>>, TuneError> {
        let current = self.claim.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let new = change(&current);
        let after = self.storage.swap_study_attr(self.study, &self.name, Some(&current.value()), &new.value())?;
        if after.as_ref() == Some(&new.value()) {
            return Ok(Ok(()));
        }
        Ok(Err(after.and_then(|v| serde_json::from_value(v).ok())))
    }

    fn stop_beating(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(beats) = self.beats.take() {
            let _ = beats.join();
        }
    }
}

impl Drop for HeldRole {
    /// Releases an unfinished role (the work failed): another process may take it at once.
    fn drop(&mut self) {
        self.stop_beating();
        if !self.finished {
            let _ = self.replace(|c| Claim { released: true, ..c.clone() });
        }
    }
}

impl Study {
    /// Claims role `name` for `round` (say, the study's budget: finalising a
    /// study of 200 trials is another round than of 100). Returns
    /// [`Claimed::Theirs`] when a live process holds it for this round or a
    /// later one, or one has done it; otherwise this process takes it, from
    /// nobody, from an earlier round, or from a holder that has ended.
    pub fn claim_role(&self, name: &str, round: u64) -> Result<Claimed, TuneError> {
        let (every, grace) = self.heartbeat_settings();
        let (study, storage) = (self.record().id, self.storage().clone());
        loop {
            let stored = storage.study_attr(study, name)?;
            let current = stored.as_ref().map(|v| Claim::parse(v, self.name(), name)).transpose()?;
            if let Some(c) = &current
                && c.round >= round
            {
                // A holder on this machine is alive while its process is;
                // one elsewhere while it beats.
                let alive = local_process_ended(&c.host, c.pid)
                    .map_or_else(|| now() - c.beat < grace.as_secs_f64(), |ended| !ended);
                if c.done || (alive && !c.released) {
                    return Ok(Claimed::Theirs(c.holder()));
                }
            }
            let mine = Claim {
                host: host_name().unwrap_or_else(|| "?".into()),
                pid: u64::from(std::process::id()),
                round,
                beat: now(),
                done: false,
                released: false,
                note: Value::Null,
            };
            if storage.swap_study_attr(study, name, stored.as_ref(), &mine.value())? == Some(mine.value()) {
                return Ok(Claimed::Mine(self.hold(name, mine, every)));
            }
            // Another process changed the claim first: look again.
        }
    }

    /// Starts renewing `claim` on role `name` every `every`.
    fn hold(&self, name: &str, claim: Claim, every: Duration) -> HeldRole {
        let claim = Arc::new(Mutex::new(claim));
        let stop = Arc::new(AtomicBool::new(false));
        let (storage, study, role) = (self.storage().clone(), self.record().id, name.to_string());
        let beats = {
            let (claim, stop, storage, role) = (claim.clone(), stop.clone(), storage.clone(), role.clone());
            std::thread::spawn(move || {
                let mut last = std::time::Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50).min(every));
                    if last.elapsed() < every {
                        continue;
                    }
                    last = std::time::Instant::now();
                    let mut held = claim.lock().unwrap_or_else(|e| e.into_inner());
                    let renewed = Claim { beat: now(), ..held.clone() };
                    // A failed renewal is tried again next time; a lost claim
                    // is found by `finish`.
                    if let Ok(Some(after)) =
                        storage.swap_study_attr(study, &role, Some(&held.value()), &renewed.value())
                        && after == renewed.value()
                    {
                        *held = renewed;
                    }
                }
            })
        };
        HeldRole { storage, study, name: role, claim, stop, beats: Some(beats), finished: false }
    }
}
