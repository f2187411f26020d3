//! Progress reporting: a bar on a terminal, periodic plain lines otherwise (CI logs).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Prints a line of progress outside training (classifier training, chain evaluation,
/// inference) through [`write_note`], the one place besides [`Progress`] that writes to
/// stderr.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::progress::write_note(format_args!($($arg)*))
    };
}

/// Writes one line to stderr (the [`note!`] macro's output).
pub(crate) fn write_note(args: std::fmt::Arguments<'_>) {
    eprintln!("{args}");
}

/// How often plain-line mode prints a step line.
const PLAIN_INTERVAL: Duration = Duration::from_secs(10);

/// Reports training progress on stderr.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    last_line: Instant,
    steps_per_epoch: u64,
    epochs: usize,
    /// Prints nothing (the ranks other than 0 of a data-parallel run).
    silent: bool,
}

impl Progress {
    /// A reporter for `epochs` epochs of `steps_per_epoch` steps.
    pub(crate) fn new(epochs: usize, steps_per_epoch: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(steps_per_epoch * epochs as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            last_line: Instant::now(),
            steps_per_epoch,
            epochs,
            silent: false,
        }
    }

    /// The same reporter, printing nothing when `silent` (and then without a bar).
    pub(crate) fn silenced(mut self, silent: bool) -> Self {
        if silent {
            self.bar = None;
        }
        self.silent = silent;
        self
    }

    /// A reporter that only prints lines (no bar), for the lines after training.
    pub(crate) fn lines_only() -> Self {
        Self {
            bar: None,
            last_line: Instant::now(),
            steps_per_epoch: 0,
            epochs: 0,
            silent: false,
        }
    }

    /// Whether the caller should read the loss for [`Progress::step`] now (reading it forces a
    /// device sync, so it is done only when something will be shown).
    pub(crate) fn wants_update(&self, step_in_epoch: u64) -> bool {
        match self.bar {
            Some(_) => step_in_epoch.is_multiple_of(10),
            None => self.last_line.elapsed() >= PLAIN_INTERVAL,
        }
    }

    /// Reports a step.
    pub(crate) fn step(
        &mut self,
        epoch: usize,
        step_in_epoch: u64,
        loss: f64,
        examples_per_s: f64,
    ) {
        if self.silent {
            return;
        }
        let message = format!("loss {loss:.2} | {examples_per_s:.0} ex/s");
        match &self.bar {
            Some(bar) => {
                bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
                bar.set_message(message);
            }
            None => {
                eprintln!(
                    "epoch {epoch}/{} step {step_in_epoch}/{} {message}",
                    self.epochs, self.steps_per_epoch
                );
                self.last_line = Instant::now();
            }
        }
    }

    /// Advances the bar by one step.
    pub(crate) fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Prints a line that stays (an epoch summary).
    pub(crate) fn line(&mut self, text: &str) {
        if self.silent {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
        self.last_line = Instant::now();
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
