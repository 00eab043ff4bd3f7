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

# Start-up and evaluation speed, issue 16's figures with their aims: the 18 PSS rules on the PSS
# fixtures (with the cold start), the whole default set on real-world (per rule), warm start from a bundle.
bench: release
    ./target/release/palisade bench --profile restricted --rounds 10 ../shared/corpus/pss/test/testdata
    ./target/release/palisade bench --skip-cold --rounds 10 --per-rule ../shared/corpus/real-world
    ./target/release/palisade bundle build --name hardened --version 0.0.0-bench --output target/bench-bundle.tar
    ./target/release/palisade bench --skip-cold --bundle target/bench-bundle.tar ../shared/corpus/real-world

# The default policy set as a bundle (OCI layout tarball), ready to sign and push.
bundle VERSION="0.1.0":
    cargo run --release -p palisade -- bundle build --name hardened --version {{VERSION}} --output target/hardened-{{VERSION}}.tar

# Start-up from a bundle: open, digest checks, signature, then the same evaluation.
bench-bundle: release
    ./target/release/palisade bundle build --name hardened --version 0.0.0-bench --output target/bench-bundle.tar
    ./target/release/palisade bench --bundle target/bench-bundle.tar ../shared/corpus/real-world

# Instructions per evaluation by rule family, under callgrind (valgrind): `just callgrind`, `just callgrind pss probes`;
# another binary: `PALISADE_BIN=/path/to/palisade just callgrind pss`. See host/benches/callgrind.sh --help.
callgrind *ARGS:
    host/benches/callgrind.sh {{ARGS}}

# Load on `palisade serve` over TLS: requests/s, p50/p95/p99, peak memory.
bench-serve:
    cargo bench -p palisade --bench serve

# Image signatures: first verification on a loopback registry, and the latency a cached verdict adds at admission.
bench-images:
    cargo bench -p palisade --bench images

# Size of each built component.
sizes: build
    ls -l target/components/*.wasm

# Optional: build one policy with cargo-component instead of build.rs (not required).
component CRATE:
    cargo component build --release -p {{CRATE}}

# What CI runs.
ci:
    .ci/run
