//! A role in a study that one process holds at a time, such as finalising
//! it (retraining and saving the final model once its trials are done) when
//! several processes, on several machines, share the study.
//!
//! The claim is a study attribute set by compare-and-swap
//! ([`Storage::swap_study_attr`]): `{"host", "pid", "round", "beat", "done"}`.
//! Whoever's value is stored holds the role. The holder renews `beat` every
//! heartbeat interval; a claim whose holder has ended (a process on this
//! machine that no longer exists, or no beat for the study's grace) or that
//! was released, or one of an earlier round (a smaller budget), may be taken
//! over. A claim marked `done` for this round or a later one is final.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use crate::study::{host_name, process_alive};
use crate::trial::now;
use crate::{Storage, Study, TuneError};

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
    value: Arc<Mutex<Value>>,
    stop: Arc<AtomicBool>,
    beats: Option<JoinHandle<()>>,
    finished: bool,
}

impl HeldRole {
    /// Marks the role done, with `note` (what was made, and where), so that
    /// no other process does it again for this round.
    pub fn finish(mut self, note: Value) -> Result<(), TuneError> {
        self.stop_beating();
        let current = self.value.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut done = current.clone();
        done["done"] = json!(true);
        done["beat"] = json!(now());
        done["note"] = note;
        let after = self.storage.swap_study_attr(self.study, &self.name, Some(&current), &done)?;
        self.finished = true;
        if after.as_ref() != Some(&done) {
            let by = after.as_ref().and_then(holder).map_or("another process".into(), |h| h.to_string());
            return Err(TuneError::Storage(format!(
                "the role '{}' was taken over by {by} (this process sent no heartbeat for too long)",
                self.name
            )));
        }
        Ok(())
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
            let current = self.value.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut released = current.clone();
            released["released"] = json!(true);
            let _ = self.storage.swap_study_attr(self.study, &self.name, Some(&current), &released);
        }
    }
}

/// The holder a stored claim names.
fn holder(claim: &Value) -> Option<Holder> {
    Some(Holder {
        host: claim["host"].as_str()?.to_string(),
        pid: claim["pid"].as_u64()?,
        done: claim["done"].as_bool().unwrap_or(false),
        note: claim["note"].clone(),
    })
}

impl Study {
    /// Claims role `name` for `round` (say, the study's budget: finalising a
    /// study of 200 trials is another round than of 100). Returns
    /// [`Claimed::Theirs`] when a live process holds it for this round or a
    /// later one, or one has done it; otherwise this process takes it, from
    /// nobody, from an earlier round, or from a holder that has ended.
    pub fn claim_role(&self, name: &str, round: u64) -> Result<Claimed, TuneError> {
        let (every, grace) = self.heartbeat_settings();
        let study = self.record().id;
        let storage = self.storage().clone();
        let host = host_name();
        loop {
            let current = storage.study_attr(study, name)?;
            if let Some(c) = &current {
                let theirs = holder(c).ok_or_else(|| {
                    TuneError::Storage(format!(
                        "study '{}': the claim on '{name}' is not one gradus wrote: {c}",
                        self.name()
                    ))
                })?;
                let released = c["released"].as_bool().unwrap_or(false);
                let later = c["round"].as_u64().unwrap_or(0) >= round;
                if later && theirs.done {
                    return Ok(Claimed::Theirs(theirs));
                }
                let alive = match host.as_deref() {
                    Some(h) if h == theirs.host && theirs.pid != u64::from(std::process::id()) => {
                        process_alive(theirs.pid)
                    }
                    _ => c["beat"].as_f64().is_some_and(|beat| now() - beat < grace.as_secs_f64()),
                };
                if later && alive && !released {
                    return Ok(Claimed::Theirs(theirs));
                }
            }
            let mine = json!({
                "host": host.clone().unwrap_or_else(|| "?".into()),
                "pid": std::process::id(),
                "round": round,
                "beat": now(),
                "done": false,
            });
            if storage.swap_study_attr(study, name, current.as_ref(), &mine)?.as_ref() == Some(&mine) {
                return Ok(Claimed::Mine(self.hold(name, mine, every)));
            }
            // Another process changed the claim first: look again.
        }
    }

    /// Starts renewing claim `value` on role `name` every `every`.
    fn hold(&self, name: &str, value: Value, every: Duration) -> HeldRole {
        let value = Arc::new(Mutex::new(value));
        let stop = Arc::new(AtomicBool::new(false));
        let (storage, study, role) = (self.storage().clone(), self.record().id, name.to_string());
        let beats = {
            let (value, stop, storage, role) = (value.clone(), stop.clone(), storage.clone(), role.clone());
            std::thread::spawn(move || {
                let mut last = std::time::Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50).min(every));
                    if last.elapsed() < every {
                        continue;
                    }
                    last = std::time::Instant::now();
                    let mut held = value.lock().unwrap_or_else(|e| e.into_inner());
                    let mut renewed = held.clone();
                    renewed["beat"] = json!(now());
                    // A failed renewal is tried again next time; a lost claim
                    // is found by `finish`.
                    if let Ok(Some(after)) = storage.swap_study_attr(study, &role, Some(&held), &renewed)
                        && after == renewed
                    {
                        *held = renewed;
                    }
                }
            })
        };
        HeldRole { storage, study, name: role, value, stop, beats: Some(beats), finished: false }
    }
}
