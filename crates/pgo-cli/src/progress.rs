//! Waiting shows progress on a terminal, and nothing otherwise.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    tty: bool,
    started: Instant,
    shown: bool,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            shown: false,
        }
    }

    /// Shows `what` after the first second of waiting.
    pub fn update(&mut self, what: &str) {
        let elapsed = self.started.elapsed();
        if !self.tty || elapsed.as_secs() < 1 {
            return;
        }
        let spinner = ['|', '/', '-', '\\'][(elapsed.as_millis() / 250 % 4) as usize];
        eprint!("\r\x1b[2K{spinner} {what} ({}s)", elapsed.as_secs());
        let _ = std::io::stderr().flush();
        self.shown = true;
    }

    pub fn finish(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.shown = false;
        }
    }
}
