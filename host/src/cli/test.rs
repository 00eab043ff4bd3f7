//! `palisade test`: run test suites (expected verdicts of rules on objects)
//! and report where the rules agree; see `docs/test-suites.md`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;

use super::{Colour, PolicyArgs, catalog_from, policy_sources, runtime, threads};
use palisade::report;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    /// A table per suite, differences with what the rule reported.
    Text,
    /// JUnit XML: a test case per expectation and object.
    Junit,
}

#[derive(clap::Args)]
pub struct Args {
    /// Suite files, or directories holding them (their YAML files with
    /// `apiVersion: palisade.dev/v1alpha1`, recursively).
    #[arg(value_name = "PATH", default_value = ".")]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: TestFormat,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, value_enum, default_value = "auto")]
    color: Colour,
    #[command(flatten)]
    policy: PolicyArgs,
}

/// 0: every expectation agrees; 1: a difference; 2: a broken suite (or
/// policies that could not be loaded).
pub fn run(args: Args) -> anyhow::Result<u8> {
    let runtime = runtime(&args.policy)?;
    let sources = policy_sources(&args.policy, &[], &runtime)?;
    let catalog = catalog_from(&args.policy, sources, runtime)?;
    let run = palisade::suite::run_paths(&catalog, &args.paths, threads(args.threads));
    let text = match args.format {
        TestFormat::Junit => {
            // The XML carries them too; standard error says them to a person.
            let mut err = std::io::stderr().lock();
            for e in &run.broken {
                let _ = writeln!(err, "palisade: broken suite: {e}");
            }
            report::test_junit(&run)
        }
        TestFormat::Text => {
            let colour = match args.color {
                Colour::Always => true,
                Colour::Never => false,
                Colour::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            };
            report::test_text(&run, colour)
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes()).context("writing the report")?;
    Ok(run.exit_code())
}
