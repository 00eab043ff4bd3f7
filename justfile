# Developer recipes. Everything here also works with plain cargo; see README.md.

default: check-examples

# Check the bundled examples with the built-in policies.
check-examples:
    cargo run -p palisade -- check --exit-zero examples/

# Build the host and the policy components.
build:
    cargo build -p palisade

# Build an optimised binary.
release:
    cargo build --release -p palisade

# Every test, as CI runs them.
test:
    cargo test --workspace

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Start-up and evaluation speed on real-world manifests and on the PSS fixtures.
bench:
    cargo build --release -p palisade
    ./target/release/palisade bench ../shared/corpus/real-world
    ./target/release/palisade bench --profile restricted ../shared/corpus/pss/test/testdata

# Load on `palisade serve` over TLS: requests/s, p50/p95/p99, peak memory.
bench-serve:
    cargo bench -p palisade --bench serve

# Size of each built component.
sizes: build
    ls -l target/components/*.wasm

# Optional: build one policy with cargo-component instead of build.rs (not required).
component CRATE:
    cargo component build --release -p {{CRATE}}

# What CI runs.
ci:
    .ci/run
