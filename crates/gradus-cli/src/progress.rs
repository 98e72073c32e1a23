//! Training progress: a progress bar (epochs, loss, ETA) on a terminal, plain
//! step lines when stdout is not one, nothing with `--quiet` or `--json`.

use std::io::IsTerminal;

use gradus::train::{Control, EpochRecord, Observer, StepLog};
use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    step_lines: bool,
    /// A step line every this many steps (of those the trainer logs).
    print_every: usize,
    /// What the run's loss curve is drawn from: (step, batch loss) as
    /// logged, and each epoch's (steps so far, training loss, validation loss).
    pub steps: Vec<(f64, f64)>,
    pub epochs: Vec<(f64, f64, Option<f64>)>,
}

impl Progress {
    /// `quiet` shows nothing; otherwise a bar when stderr is a terminal, and
    /// a line for each step the trainer logs that is a multiple of
    /// `print_every` (above the bar, or plain).
    pub fn new(epochs: usize, quiet: bool, print_every: usize) -> Self {
        let (steps, epochs_seen) = (Vec::new(), Vec::new());
        let print_every = print_every.max(1);
        if quiet {
            return Self { bar: None, step_lines: false, print_every, steps, epochs: epochs_seen };
        }
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(epochs as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} epochs  {msg}  ETA {eta}")
                    .expect("a valid template"),
            );
            bar
        });
        Self { bar, step_lines: true, print_every, steps, epochs: epochs_seen }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn on_step(&mut self, log: &StepLog) {
        self.steps.push((log.step as f64, log.loss));
        if !self.step_lines || !log.step.is_multiple_of(self.print_every) {
            return;
        }
        let line = format!("step {} loss {} grad_norm {}", log.step, crate::num(log.loss), crate::num(log.grad_norm));
        // A closed stdout (`| head`) just ends the step lines.
        let print = || {
            use std::io::Write;
            if writeln!(std::io::stdout().lock(), "{line}").is_err() {
                return false;
            }
            true
        };
        let ok = match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        };
        self.step_lines &= ok;
    }

    fn on_epoch(&mut self, record: &EpochRecord) -> Control {
        self.epochs.push((record.steps as f64, record.train_loss, record.valid_loss));
        if let Some(bar) = &self.bar {
            let valid = record.valid_loss.map_or(String::new(), |v| format!("  valid {}", crate::num(v)));
            bar.set_message(format!("loss {}{valid}", crate::num(record.train_loss)));
            bar.inc(1);
        }
        Control::Continue
    }
}
