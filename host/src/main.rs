//! The `palisade` command line (see `cli`).

mod cli;

/// mimalloc rather than glibc's malloc: see its line in Cargo.toml. The
/// library leaves the choice to its user; the components have their own
/// (the SDK's `allocator`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
