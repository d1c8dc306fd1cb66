//! The terminal: `redis-cli --cluster`-style status lines (`>>>`, `[OK]`, `[WARNING]`,
//! `[ERR]`), coloured only when stderr is a terminal (and `NO_COLOR` is unset), and progress
//! bars for the long phases (cluster start, run, check), drawn only on a terminal: when stderr
//! is a file or a pipe they are hidden and the output is the plain lines alone.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often a progress bar is redrawn.
const TICK: Duration = Duration::from_millis(120);

/// What a status line says about its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// A step begins (`>>>`).
    Step,
    /// A step succeeded (`[OK]`).
    Ok,
    /// Something is off but the run goes on (`[WARNING]`).
    Warning,
    /// Something failed (`[ERR]`).
    Error,
}

impl Tag {
    fn text(self) -> &'static str {
        match self {
            Tag::Step => ">>>",
            Tag::Ok => "[OK]",
            Tag::Warning => "[WARNING]",
            Tag::Error => "[ERR]",
        }
    }

    /// The ANSI SGR code of its colour: bold, green, yellow, red.
    fn sgr(self) -> &'static str {
        match self {
            Tag::Step => "1",
            Tag::Ok => "32",
            Tag::Warning => "33",
            Tag::Error => "31",
        }
    }
}

/// Whether status lines are coloured: stderr is a terminal and `NO_COLOR` is unset.
fn colour() -> bool {
    static COLOUR: OnceLock<bool> = OnceLock::new();
    *COLOUR
        .get_or_init(|| std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
}

/// Every progress bar, drawn on stderr (hidden when it is not a terminal), so that status
/// lines can be printed above them.
fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// The status line `tag text`, the tag coloured on a terminal.
pub fn format_line(tag: Tag, text: &str, coloured: bool) -> String {
    if coloured {
        format!("\x1b[{}m{}\x1b[0m {text}", tag.sgr(), tag.text())
    } else {
        format!("{} {text}", tag.text())
    }
}

/// Prints a status line on stderr, above any progress bar.
pub fn line(tag: Tag, text: &str) {
    let line = format_line(tag, text, colour());
    bars().suspend(|| eprintln!("{line}"));
}

/// A spinner saying `message` while a phase of unknown length runs; finish it with
/// `finish_and_clear`.
pub fn spinner(message: &str) -> ProgressBar {
    let bar = bars().add(ProgressBar::new_spinner());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message.to_string());
    bar.enable_steady_tick(TICK);
    bar
}

/// Waits `duration` with a bar filling up as it passes; returns `true` if `interrupt` fired
/// first.
pub async fn wait(duration: Duration, interrupt: &CancellationToken, message: &str) -> bool {
    let bar = bars().add(ProgressBar::new(duration.as_millis().max(1) as u64));
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {elapsed} / {prefix}")
        .map(|s| s.progress_chars("=> "))
    {
        bar.set_style(style);
    }
    bar.set_prefix(humantime::format_duration(duration).to_string());
    bar.set_message(message.to_string());
    let start = Instant::now();
    let deadline = tokio::time::sleep(duration);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(TICK);
    let interrupted = loop {
        tokio::select! {
            _ = &mut deadline => break false,
            _ = interrupt.cancelled() => break true,
            _ = tick.tick() => bar.set_position(start.elapsed().as_millis() as u64),
        }
    };
    bar.finish_and_clear();
    interrupted
}

/// A `redis-cli --cluster`-style step line (bold on a terminal).
pub fn status(text: &str) {
    line(Tag::Step, text);
}

/// A `redis-cli --cluster`-style success line (green on a terminal).
pub fn ok(text: &str) {
    line(Tag::Ok, text);
}

/// A `redis-cli --cluster`-style error line (red on a terminal).
pub fn error(text: &str) {
    line(Tag::Error, text);
}

/// A `redis-cli --cluster`-style warning line (yellow on a terminal).
pub fn warn(text: &str) {
    line(Tag::Warning, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_coloured_only_when_asked() {
        assert_eq!(format_line(Tag::Ok, "ready", false), "[OK] ready");
        assert_eq!(format_line(Tag::Step, "Starting", false), ">>> Starting");
        assert_eq!(
            format_line(Tag::Error, "boom", true),
            "\x1b[31m[ERR]\x1b[0m boom"
        );
    }
}
