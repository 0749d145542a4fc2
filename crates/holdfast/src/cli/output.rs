//! How the CLI prints: `--output text|json|table` on standard output, progress bars and summary
//! lines on standard error.
//!
//! Standard output carries only results, so `holdfast … | other-tool` sees data and nothing else;
//! progress (drawn only when standard error is a terminal) and the closing summary go to standard
//! error, and `--quiet` silences both.

use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The shape of standard output, as the AWS CLI's `--output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Plain lines, for reading and for shell pipelines.
    #[default]
    Text,
    /// One JSON document per result (JSON lines for streams of messages).
    Json,
    /// A table with a header row, for reading on a terminal.
    Table,
}

/// A table printed once all its rows are known; columns as wide as their widest cell.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Cells wider than this are cut, with an ellipsis: a 256 KiB body must not make a table unreadable.
const MAX_CELL_CHARS: usize = 60;

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(|cell| cell_text(&cell)).collect());
    }

    pub fn print(&self) {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let rule: String = widths.iter().map(|w| format!("+{}", "-".repeat(w + 2))).collect::<String>() + "+";
        let line = |cells: &[String]| -> String {
            widths
                .iter()
                .zip(cells)
                .map(|(width, cell)| format!("| {cell}{} ", " ".repeat(width - cell.chars().count())))
                .collect::<String>()
                + "|"
        };
        out!("{rule}");
        out!("{}", line(&self.headers));
        out!("{rule}");
        for row in &self.rows {
            out!("{}", line(row));
        }
        out!("{rule}");
    }
}

/// One line per cell, escapes for control characters, and a bounded width.
fn cell_text(text: &str) -> String {
    let escaped: String = text.chars().flat_map(char::escape_debug).collect();
    let escaped = if escaped.len() == text.len() { text.to_string() } else { escaped };
    if escaped.chars().count() <= MAX_CELL_CHARS {
        escaped
    } else {
        escaped.chars().take(MAX_CELL_CHARS - 1).collect::<String>() + "…"
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    holdfast_bench::group(n)
}

/// `1` → "1 message", `2` → "2 messages".
pub fn messages(n: u64) -> String {
    if n == 1 {
        "1 message".to_string()
    } else {
        format!("{} messages", thousands(n))
    }
}

/// A long job's progress on standard error: a bar with rate and ETA when the total is known, a
/// counter with the rate when it is not. Hidden unless standard error is a terminal (and always
/// with `--quiet`); the summary line at the end is printed either way, unless `--quiet`.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    quiet: bool,
}

impl Progress {
    /// `unit` names what is counted ("messages"); `total` is how many are expected, if known.
    pub fn new(total: Option<u64>, unit: &str, quiet: bool) -> Progress {
        let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr_with_hz(10) };
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), target).with_style(
                ProgressStyle::with_template(&format!(
                    "{{bar:30}} {{human_pos}}/{{human_len}} {unit} · {{per_sec}} · ETA {{eta}}"
                ))
                .expect("a valid template"),
            ),
            None => ProgressBar::with_draw_target(None, target).with_style(
                ProgressStyle::with_template(&format!("{{spinner}} {{human_pos}} {unit} · {{per_sec}} · {{elapsed}}"))
                    .expect("a valid template"),
            ),
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar, started: Instant::now(), quiet }
    }

    pub fn advance(&self, by: u64) {
        self.bar.inc(by);
    }

    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub fn set_position(&self, position: u64) {
        self.bar.set_position(position);
    }

    /// Removes the bar and prints `what` followed by the elapsed time, e.g. "sent 100,000
    /// messages in 13.8 s", on standard error.
    pub fn finish(&self, what: &str) {
        self.bar.finish_and_clear();
        if !self.quiet {
            eprintln!("{what} in {:.1} s", self.started.elapsed().as_secs_f64());
        }
    }

    /// Prints a line on standard error above the bar (a failed line, say) without garbling it.
    pub fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Removes the bar without a summary (the command failed and says why itself).
    pub fn abandon(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(messages(1), "1 message");
        assert_eq!(messages(100_000), "100,000 messages");
    }

    #[test]
    fn table_cells_stay_on_one_line_and_bounded() {
        assert_eq!(cell_text("plain"), "plain");
        assert_eq!(cell_text("two\nlines"), "two\\nlines");
        let long = "x".repeat(500);
        assert_eq!(cell_text(&long).chars().count(), MAX_CELL_CHARS);
    }
}
