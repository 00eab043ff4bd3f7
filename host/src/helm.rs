//! Helm charts → manifests: `helm template`, run as the user would run it,
//! its output read like any other input. Each document of the output names
//! its template in a `# Source:` comment, which [`crate::documents`] keeps,
//! so every finding points at the chart's file.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::input::MAX_INPUT_BYTES;

/// What to render: `helm template RELEASE CHART [--namespace NS] [-f FILE]... [--set K=V]...`.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// A chart directory, packaged chart, or `repo/name` helm can resolve.
    pub chart: String,
    pub release: String,
    pub namespace: Option<String>,
    pub values: Vec<PathBuf>,
    pub set: Vec<String>,
}

/// How long a render may take: charts render in seconds; a hung helm (a
/// repository that does not answer) must not hang CI.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(300);

/// The arguments given to helm.
pub fn arguments(c: &Chart) -> Vec<String> {
    let mut args = vec!["template".to_string(), c.release.clone(), c.chart.clone()];
    if let Some(ns) = &c.namespace {
        args.extend(["--namespace".to_string(), ns.clone()]);
    }
    for v in &c.values {
        args.extend(["--values".to_string(), v.display().to_string()]);
    }
    for s in &c.set {
        args.extend(["--set".to_string(), s.clone()]);
    }
    args
}

/// Render `chart` with the `helm` on `PATH`: its standard output, or why not
/// (helm missing, helm's own error as it wrote it, a timeout, output over
/// [`MAX_INPUT_BYTES`]).
pub fn render(chart: &Chart) -> Result<String, String> {
    let mut child = Command::new("helm")
        .args(arguments(chart))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "`helm` is not on PATH: install Helm (https://helm.sh/docs/intro/install/), \
                 or render the chart yourself and check the output (`helm template ... | palisade check -`)"
                    .to_string()
            }
            _ => format!("cannot run helm: {e}"),
        })?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("cannot read helm's output".into());
    };
    // Both pipes are read on their own threads, so a full one never blocks helm.
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let read = (&mut stdout).take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes);
        // Whatever is left is drained, so helm can finish.
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        read.map(|_| bytes)
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = (&mut stderr).take(64 << 10).read_to_end(&mut bytes);
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        bytes
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > RENDER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("helm template did not finish within {} s", RENDER_TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for helm: {e}")),
        }
    };
    let stdout = out.join().map_err(|_| "reading helm's output failed".to_string())?.map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).trim().to_string();
    if !status.success() {
        return Err(format!("helm template failed ({status}): {stderr}"));
    }
    if stdout.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!("helm's output is over the limit of {} MiB for one input", MAX_INPUT_BYTES >> 20));
    }
    String::from_utf8(stdout).map_err(|_| "helm's output is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_helms() {
        let c = Chart {
            chart: "./chart".into(),
            release: "r".into(),
            namespace: Some("prod".into()),
            values: vec![PathBuf::from("a.yaml"), PathBuf::from("b.yaml")],
            set: vec!["x=1".into()],
        };
        assert_eq!(
            arguments(&c),
            [
                "template",
                "r",
                "./chart",
                "--namespace",
                "prod",
                "--values",
                "a.yaml",
                "--values",
                "b.yaml",
                "--set",
                "x=1"
            ]
        );
    }
}
