//! `palisade build`: a rule crate made a policy component, checked against the
//! contract and loaded as `check` would load it.

use std::path::PathBuf;

use anyhow::Context;

use palisade::policy_set::load_component;
use palisade::runtime::{Runtime, SandboxLimits, default_cache_dir};
use palisade::scaffold;

#[derive(clap::Args)]
pub struct Args {
    /// The rule crate's directory.
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Where to write the component (default: DIR/target/palisade/CRATE.wasm).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let built = scaffold::build(&args.dir, args.output.as_deref())?;
    let origin = built.component.display().to_string();
    let cache = default_cache_dir();
    let runtime = Runtime::new(cache.clone(), SandboxLimits::default())?.with_progress(super::compile_progress(cache));
    let loaded = load_component(&runtime, &origin, &built.bytes).context("the component does not load")?;
    println!("Built {origin}");
    println!("  id:       {}", loaded.meta.id);
    println!("  size:     {} bytes", loaded.compiled.size);
    println!("  contract: {}@{}", palisade::componentize::PACKAGE, loaded.compiled.contract);
    println!("  digest:   {}", loaded.compiled.digest);
    println!("  module:   {}", built.module.display());
    Ok(0)
}
