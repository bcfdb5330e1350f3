//! Output: aligned tables for people, JSON for scripts, and a progress
//! line on stderr when it is a terminal.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use serde_json::Value;

/// Prints a line on stdout like `println!`, but a stdout that cannot be
/// written ends the program instead of panicking: quietly (status 0) when
/// the reader has gone, as `head` does after its lines, with a message
/// (status 1) otherwise.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` on stdout, with `outln!`'s handling of a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write_stdout(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

/// What `outln!` and `out!` call.
pub fn write_stdout(args: std::fmt::Arguments) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        stdout_failed(&e)
    }
}

/// Ends the program after a failed write to stdout: status 0 for a closed
/// pipe (the reader took what it wanted), 1 with a message for anything
/// else (a full disk).
fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("klamm: cannot write to stdout: {e}");
    std::process::exit(1)
}

/// A table: a header and rows, printed with aligned columns.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, each column as wide as its widest cell.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    let pad = widths.get(i).copied().unwrap_or(0);
                    s.push_str(&format!("{cell:<pad$}  "));
                }
            }
            s.trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    /// Prints the table on stdout.
    pub fn print(&self) {
        out!("{}", self.render());
    }
}

/// Prints a JSON document on stdout.
pub fn print_json(v: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// `-` for `None`.
pub fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The text of an outcome: `ok`, or the error.
pub fn outcome<T>(r: &klamm::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("error: {e}"),
    }
}

/// The JSON of an outcome: `{"ok": true}` or `{"ok": false, "error":
/// ..., "code": "TOPIC_ALREADY_EXISTS"}`.
pub fn outcome_json<T>(r: &klamm::Result<T>) -> Value {
    match r {
        Ok(_) => serde_json::json!({"ok": true}),
        Err(e) => error_json(e),
    }
}

/// An error as JSON: `{"ok": false, "error": …, "code": "NAME" or null}`.
pub fn error_json(e: &klamm::Error) -> Value {
    serde_json::json!({
        "ok": false,
        "error": e.to_string(),
        "code": e.kafka_code().map(|c| c.name().to_string()),
    })
}

/// A running count with its rate, redrawn on stderr at most once a
/// second, only when stderr is a terminal.
pub struct Progress {
    what: &'static str,
    started: Instant,
    last: Instant,
    count: u64,
    shown: bool,
    enabled: bool,
}

impl Progress {
    /// A progress line counting `what` ("records").
    pub fn new(what: &'static str) -> Progress {
        let now = Instant::now();
        Progress {
            what,
            started: now,
            last: now,
            count: 0,
            shown: false,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Counts `n` more.
    pub fn add(&mut self, n: u64) {
        self.count += n;
        if self.enabled && self.last.elapsed().as_secs() >= 1 {
            self.last = Instant::now();
            self.draw();
        }
    }

    fn draw(&mut self) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.count as f64 / secs;
        eprint!("\r{} {}, {:.0}/s   ", self.count, self.what, rate);
        let _ = std::io::stderr().flush();
        self.shown = true;
    }

    /// Ends the line (if one was drawn).
    pub fn finish(&mut self) {
        if self.shown {
            self.draw();
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["TOPIC", "P", "LEADER"]);
        t.row(vec!["orders".into(), "0".into(), "1".into()]);
        t.row(vec!["a".into(), "10".into(), "-".into()]);
        assert_eq!(
            t.render(),
            "TOPIC   P   LEADER\norders  0   1\na       10  -\n"
        );
    }
}
