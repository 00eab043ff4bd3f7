//! The server's log: one JSON object a line, each starting with `time` (RFC
//! 3339, UTC, milliseconds), `level` (`info`, `warn` or `error`) and `msg` (a
//! fixed text), then the line's own fields. Decisions and refused requests go
//! to standard output (see `decision_line` in the module above), everything
//! else (start-up, certificate reloads, client and accept failures, shutdown)
//! to standard error.

use std::time::SystemTime;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// `2025-01-31T12:00:00.123Z`
pub fn timestamp(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One line (no newline): `time`, `level` and `msg`, then the members of
/// `fields` (an object; anything else adds nothing) but those three.
pub fn line(level: Level, msg: &str, fields: Value) -> String {
    line_at(SystemTime::now(), level, msg, fields)
}

fn line_at(at: SystemTime, level: Level, msg: &str, fields: Value) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"time\":");
    out.push_str(&Value::String(timestamp(at)).to_string());
    out.push_str(",\"level\":\"");
    out.push_str(level.as_str());
    out.push_str("\",\"msg\":");
    out.push_str(&Value::String(msg.to_string()).to_string());
    if let Value::Object(fields) = fields {
        for (key, value) in fields {
            if matches!(key.as_str(), "time" | "level" | "msg") {
                continue;
            }
            out.push(',');
            out.push_str(&Value::String(key).to_string());
            out.push(':');
            out.push_str(&value.to_string());
        }
    }
    out.push('}');
    out
}

/// Text from a request (a uid, a user or object name, a refusal that quotes
/// what was sent), cut to `max` bytes on a character boundary and marked, so
/// that a client cannot make a log line as large as its body.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &text[..end], text.len())
}

/// Bytes kept of one field of a request in a log line.
pub const FIELD_BYTES: usize = 256;

/// Bytes kept of a refusal's message in a log line and in the reply.
pub const MESSAGE_BYTES: usize = 1024;

/// `--policy-log` in `serve`: what an opted-in component printed during a
/// call, as one JSON line like the server's others.
pub fn policy_output(rule: &str, output: &crate::wasi::Captured) {
    stderr(
        Level::Info,
        "policy output",
        serde_json::json!({"rule": rule, "text": output.text, "droppedBytes": output.dropped}),
    );
}

/// Write one line to standard error.
pub fn stderr(level: Level, msg: &str, fields: Value) {
    eprintln!("{}", line(level, msg, fields));
}

/// Compiling the policy components (only those not in the cache yet), as log
/// lines: one when it starts, one when it ends.
pub fn compile_progress(
    cache: Option<std::path::PathBuf>,
) -> std::sync::Arc<dyn Fn(crate::runtime::CompileProgress) + Send + Sync> {
    use crate::runtime::CompileProgress;
    let started = std::sync::Mutex::new(std::time::Instant::now());
    let cache = cache.map(|dir| dir.display().to_string());
    std::sync::Arc::new(move |event| match event {
        CompileProgress::Started { total } => {
            if let Ok(mut t) = started.lock() {
                *t = std::time::Instant::now();
            }
            let msg = match cache {
                Some(_) => "compiling policy components to native code, once: they are kept in the cache",
                None => "compiling policy components to native code (--no-cache: at every start)",
            };
            stderr(Level::Info, msg, serde_json::json!({"components": total, "cache": cache}));
        }
        CompileProgress::Compiled { .. } => {}
        CompileProgress::Finished { total } => {
            let seconds = started.lock().map_or(0.0, |t| t.elapsed().as_secs_f64());
            stderr(
                Level::Info,
                "compiled policy components",
                serde_json::json!({"components": total, "seconds": (seconds * 10.0).round() / 10.0}),
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_line_is_one_json_object_led_by_time_level_and_msg() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_042);
        let text = line_at(at, Level::Warn, "say \"hi\"\n", json!({"peer": "1.2.3.4:5", "msg": "ignored", "n": 3}));
        assert!(
            text.starts_with(r#"{"time":"2023-11-14T22:13:20.042Z","level":"warn","msg":"say \"hi\"\n""#),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            json!({"time": "2023-11-14T22:13:20.042Z", "level": "warn", "msg": "say \"hi\"\n", "peer": "1.2.3.4:5", "n": 3})
        );
        let bare: Value = serde_json::from_str(&line_at(at, Level::Info, "ready", Value::Null)).unwrap();
        assert_eq!(bare.as_object().map(|o| o.len()), Some(3));
    }
}
