//! `palisade new`: a rule crate of one's own, ready to build and test.

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;

use palisade::scaffold::{self, Kind, NewRule, Sdk};

#[derive(Clone, Copy, ValueEnum)]
enum RuleKind {
    /// A rule about pods: the SDK's typed view of the pod spec, whichever of the
    /// nine pod-bearing kinds holds it (example: every container sets a memory limit).
    Pod,
    /// A rule about whole objects, with a setting (example: workloads and
    /// Services carry an owner label).
    Object,
}

#[derive(clap::Args)]
pub struct Args {
    /// The rule's id, kebab-case; also the crate's name.
    name: String,
    #[arg(long, value_enum, default_value = "pod")]
    kind: RuleKind,
    /// The crate's directory, created or empty (default: ./NAME).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Take the SDK from this directory (`policies/sdk` of a Palisade checkout).
    /// Default: the SDK source this palisade was built from, when it is still there.
    #[arg(long, value_name = "DIR", conflicts_with = "sdk_git")]
    sdk_path: Option<PathBuf>,
    /// Take the SDK from this git repository (cargo finds the crate in it).
    #[arg(long, value_name = "URL")]
    sdk_git: Option<String>,
    /// With --sdk-git: the commit, tag or branch to pin.
    #[arg(long, value_name = "REV", requires = "sdk_git")]
    sdk_rev: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    scaffold::check_name(&args.name)?;
    let sdk = match (args.sdk_path, args.sdk_git) {
        (Some(dir), _) => Sdk::path(&dir).context("--sdk-path")?,
        (None, Some(url)) => Sdk::Git { url, rev: args.sdk_rev },
        (None, None) => Sdk::default_source()?,
    };
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let kind = match args.kind {
        RuleKind::Pod => Kind::Pod,
        RuleKind::Object => Kind::Object,
    };
    let rule = NewRule { name: args.name, kind, dir, sdk };
    let written = scaffold::create(&rule)?;
    println!("Created the rule crate {} in {}:", rule.name, rule.dir.display());
    for file in &written {
        println!("  {}", file.strip_prefix(&rule.dir).unwrap_or(file).display());
    }
    match &rule.sdk {
        Sdk::Path(dir) => println!("SDK: {} (path)", dir.display()),
        Sdk::Git { url, rev } => {
            println!("SDK: {url}{} (git)", rev.as_ref().map(|r| format!(" at {r}")).unwrap_or_default())
        }
    }
    let name = &rule.name;
    println!("Next (docs/write-a-rule.md):");
    println!("  cd {}", rule.dir.display());
    println!("  cargo test                                                   # the unit tests");
    println!("  palisade build                                               # → target/palisade/{name}.wasm");
    println!("  palisade test --policies target/palisade/{name}.wasm tests/   # the expected verdicts");
    Ok(0)
}
