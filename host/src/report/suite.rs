//! The text report of `palisade test`: a table per suite of every
//! expectation on every object, agreeing (`ok`) or not (`DIFF`, with what the
//! rule reported), then the broken suites and a summary line.

use std::fmt::Write as _;

use super::Paint;
use crate::suite::{Actual, Check, TestRun};

/// Violations shown under a difference, at most.
const SHOWN: usize = 5;

/// What a difference is about, one line each: the rule's violations, why it
/// was skipped, or how it failed.
pub(crate) fn difference_lines(check: &Check) -> Vec<String> {
    let mut lines = Vec::new();
    match &check.actual {
        Actual::Evaluated(seen) if seen.is_empty() => lines.push(format!("{} reported no violation", check.rule)),
        Actual::Evaluated(seen) => {
            for v in seen.iter().take(SHOWN) {
                let exempted = if v.exempted { " (exempted)" } else { "" };
                lines.push(format!("{}: {}{exempted}", if v.path.is_empty() { "/" } else { &v.path }, v.message));
            }
            if seen.len() > SHOWN {
                lines.push(format!("... and {} more", seen.len() - SHOWN));
            }
        }
        Actual::Skip(why) => lines.push(format!("skipped: {why}")),
        Actual::Error(message) => lines.push(format!("{} failed: {message}", check.rule)),
    }
    if check.expected.is_none() {
        lines.push("(no expectation names this rule here; a policy error is always a difference)".into());
    }
    lines
}

/// The text report of a test run.
pub fn test_text(run: &TestRun, colour: bool) -> String {
    let paint = Paint(colour);
    let mut out = String::new();
    for o in &run.outcomes {
        let differences = o.differences();
        let verdict = if differences == 0 {
            format!("{} agree", o.checks.len())
        } else {
            format!("{differences} of {} differ", o.checks.len())
        };
        let _ = writeln!(
            out,
            "{}  {} (profile {}): {verdict}",
            paint.bold(&format!("{}:{}", o.file, o.line)),
            o.name,
            o.profile
        );
        let rows: Vec<[String; 7]> = o
            .checks
            .iter()
            .map(|c| {
                [
                    if c.agrees() { "ok".into() } else { "DIFF".into() },
                    c.line.to_string(),
                    c.resource.label(),
                    c.rule.clone(),
                    c.expected.as_ref().map_or_else(|| "-".into(), |e| e.verdict.as_str().into()),
                    c.actual_text(),
                    c.expected.as_ref().map(crate::suite::Expected::filters).unwrap_or_default(),
                ]
            })
            .collect();
        let header = ["RESULT", "LINE", "RESOURCE", "RULE", "EXPECTED", "ACTUAL", "FILTER"].map(String::from);
        let mut widths = [0; 7];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |row: &[String; 7]| -> String {
            let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:w$}")).collect();
            format!("  {}", cells.join("  ").trim_end())
        };
        let _ = writeln!(out, "{}", paint.dim(&line(&header)));
        for (check, row) in o.checks.iter().zip(&rows) {
            if check.agrees() {
                let _ = writeln!(out, "{}", line(row));
            } else {
                let _ = writeln!(out, "{}", paint.bold(&line(row)));
                let indent = " ".repeat(2 + widths[0] + 2);
                for detail in difference_lines(check) {
                    let _ = writeln!(out, "{indent}{detail}");
                }
            }
        }
        if o.unasserted > 0 {
            let _ = writeln!(
                out,
                "  {}",
                paint.dim(&format!(
                    "{} violation{} by rules no expectation names for the object (not compared)",
                    o.unasserted,
                    if o.unasserted == 1 { "" } else { "s" }
                ))
            );
        }
        for note in &o.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out.push('\n');
    }
    for e in &run.broken {
        let _ = writeln!(out, "{}: {e}", paint.bold("broken suite"));
    }
    if !run.broken.is_empty() {
        out.push('\n');
    }
    let suites = run.outcomes.len();
    let checks = run.checks();
    let differences = run.differences();
    let broken = run.broken_files().len();
    let _ = write!(
        out,
        "{suites} suite{} run, {checks} check{}: {} agree, {differences} differ{}",
        if suites == 1 { "" } else { "s" },
        if checks == 1 { "" } else { "s" },
        checks - differences,
        if differences == 1 { "s" } else { "" },
    );
    if broken > 0 {
        let _ = write!(out, "; {broken} file{} with broken suites", if broken == 1 { "" } else { "s" });
    }
    if run.skipped_files > 0 {
        let _ = write!(
            out,
            " ({} YAML file{} of the directories not suites)",
            run.skipped_files,
            if run.skipped_files == 1 { "" } else { "s" }
        );
    }
    out.push('\n');
    out
}
