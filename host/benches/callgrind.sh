#!/usr/bin/env bash
# Instructions per evaluation, by rule family, counted by callgrind: a figure
# that machine noise does not move (issue 16: "before and after, per rule family").
#
#   host/benches/callgrind.sh [--bin BIN] [--out DIR] [--toggle PATTERN] [FAMILY|RULE ...]
#
# BIN (default $PALISADE_BIN, else target/release/palisade) checks
# host/benches/fixtures/deployment-2k.json x100 (a List of 100 copies named d-0..d-99)
# with `check --threads 1 --policy-timeout-ms 600000`. Callgrind collects only
# inside `Runtime::evaluate` (the host crossing and the guest) and
# `view::Object::for_policy` (parsing the object and pruning it to what each
# rule reads, once per object and view); instantiation, reading and reporting
# are excluded, so Ir / evaluations is the cost of one evaluation. The JIT share is the Ir in code of no object file (`???`): the
# compiled guest. "writing Ir/object" is counted apart: `resources::resource`,
# which writes each object's JSON text once (and, since the tape is made
# while writing, the tape pruning reads), shared by every rule of a run; a
# binary that wrote the text and read the tape apart counts the reading in
# Ir/evaluation instead. Families (default: all of them):
#   pss        --profile restricted (the 18 built-in PSS rules)
#   image      image-tag image-digest (the image-* rules active without a configuration)
#   probes     liveness-probe readiness-probe
#   resources  resource-limits resource-requests
#   secret-env secret-env-literal
#   rofs       read-only-root-filesystem
#   RULE       any built-in rule id, alone
# Every family but pss runs with `--no-builtin --policies DIR`, DIR
# holding BIN's own built-in components (taken from a bundle BIN builds), so a
# baseline binary is measured with its own rules.
#
# The compile cache is kept per binary under OUT/cache-*: valgrind hides
# AVX-512, which changes the cache key, so it is filled once under the fast
# `--tool=none` before the counted run. Each live instance reserves about 4 GiB
# of address space, more than valgrind gives for the whole default set (51
# rules fail to instantiate): keep families to a few dozen rules.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PALISADE_BIN:-$root/target/release/palisade}
out=$root/target/callgrind
toggle='*palisade::runtime::Runtime::evaluate*'
toggle_view='*palisade::view::Object::for_policy*'
toggle_write='*palisade::resources::resource'
families=()
while [ $# -gt 0 ]; do
    case $1 in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --toggle) toggle=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "callgrind.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) families+=("$1"); shift ;;
    esac
done
[ ${#families[@]} -gt 0 ] || families=(pss image probes resources secret-env rofs)
for tool in valgrind callgrind_annotate jq; do
    command -v $tool >/dev/null || { echo "callgrind.sh: $tool is missing (apt-get install valgrind jq)" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "callgrind.sh: no binary at $bin (build with cargo build --release -p palisade, or give --bin)" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

fixture=$root/host/benches/fixtures/deployment-2k.json
tag=$(basename "$bin")-$(sha256sum "$bin" | cut -c1-12)
work=$out/$tag
mkdir -p "$work"
export PALISADE_CACHE_DIR=$out/cache-$tag
x100=$out/deployment-2k.x100.json
jq -c '[range(100) as $i | . * {metadata:{name:"d-\($i)"}}] | {apiVersion:"v1",kind:"List",items:.}' "$fixture" >"$x100"
common=(check --exit-zero --threads 1 --policy-timeout-ms 600000)

# BIN's built-in components, one file per rule id.
components() {
    local dir=$work/components
    [ -f "$dir/.done" ] && return
    rm -rf "$dir" "$work/bundle"
    mkdir -p "$dir" "$work/bundle"
    "$bin" bundle build --name callgrind --version 0.0.0 --output "$work/bundle.tar" >"$work/bundle.log" 2>&1 ||
        { cat "$work/bundle.log" >&2; return 1; }
    tar -xf "$work/bundle.tar" -C "$work/bundle"
    local blobs=$work/bundle/blobs/sha256 top inner
    top=$(jq -r '.manifests[0].digest' "$work/bundle/index.json" | cut -d: -f2)
    jq -r '.manifests[] | "\(.annotations["io.palisade.policy.id"]) \(.digest)"' "$blobs/$top" |
        while read -r id manifest; do
            inner=$(jq -r '.layers[0].digest' "$blobs/${manifest#sha256:}")
            cp "$blobs/${inner#sha256:}" "$dir/$id.wasm"
        done
    touch "$dir/.done"
}

family_args() {
    local rules
    case $1 in
    pss) echo "--profile restricted"; return ;;
    image) rules="image-tag image-digest" ;;
    probes) rules="liveness-probe readiness-probe" ;;
    resources) rules="resource-limits resource-requests" ;;
    secret-env) rules="secret-env-literal" ;;
    rofs) rules="read-only-root-filesystem" ;;
    *) rules=$1 ;;
    esac
    components
    local dir=$work/families/$1
    rm -rf "$dir"
    mkdir -p "$dir"
    for r in $rules; do
        [ -f "$work/components/$r.wasm" ] || { echo "callgrind.sh: $bin has no built-in rule $r" >&2; return 1; }
        ln -s "$work/components/$r.wasm" "$dir/$r.wasm"
    done
    echo "--no-builtin --policies $dir"
}

echo "# $bin ($(sha256sum "$bin" | cut -c1-12)), $(valgrind --version)"
echo "# input: $fixture ($(wc -c <"$fixture") bytes) x100 -> $x100"
printf '%-31s %6s %12s %14s %8s %9s %18s\n' family rules evaluations Ir/evaluation JIT findings "writing Ir/object"
for family in "${families[@]}"; do
    args=$(family_args "$family")
    # shellcheck disable=SC2086 # word splitting of the family's arguments is meant
    valgrind --tool=none -q "$bin" "${common[@]}" $args "$fixture" >"$work/$family.warm.out" 2>&1 || {
        grep -v '^==' "$work/$family.warm.out" | tail -n 20 >&2
        echo "callgrind.sh: $family: the run that fills the cache failed (above)" >&2
        exit 1
    }
    cg=$work/$family.callgrind.out
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --callgrind-out-file="$cg" --collect-atstart=no --toggle-collect="$toggle" \
        --toggle-collect="$toggle_view" --toggle-collect="$toggle_write" "$bin" "${common[@]}" --format json $args "$x100" >"$work/$family.json" 2>"$work/$family.err" || {
        grep -v '^==' "$work/$family.err" >&2
        jq -r '.errors[]?.message' "$work/$family.json" 2>/dev/null | sort | uniq -c | head -n 5 >&2
        echo "callgrind.sh: $family: the counted run failed (above)" >&2
        exit 1
    }
    total=$(awk '/^summary:/{print $2; exit}' "$cg")
    if [ -z "$total" ] || [ "$total" = 0 ]; then
        echo "callgrind.sh: nothing collected: $bin has no function matching $toggle" \
            "(see callgrind_annotate --inclusive=yes; try --toggle '*palisade::evaluate::Worker::run*')" >&2
        exit 1
    fi
    jit=$(callgrind_annotate --threshold=100 "$cg" | awk '/\[\?\?\?\]$/{gsub(",","",$1); s+=$1} END{print s+0}')
    writing=$(callgrind_annotate --inclusive=yes --threshold=100 "$cg" |
        awk '/ \?\?\?:palisade::resources::resource \[/ && !n++{gsub(",","",$1); print $1}')
    writing=${writing:-0}
    total=$((total - writing))
    evaluations=$(jq .summary.evaluations "$work/$family.json")
    rules=$(jq .summary.policies "$work/$family.json")
    findings=$(jq .summary.findings "$work/$family.json")
    inactive=$(jq -r '.summary.inactive // {} | keys | join(" ")' "$work/$family.json")
    printf '%-31s %6s %12s %14s %7.1f%% %9s %18s%s\n' "$family" "$rules" "$evaluations" \
        "$(LC_ALL=C awk -v t="$total" -v e="$evaluations" 'BEGIN{printf "%d", (e>0 ? t/e : 0)}')" \
        "$(awk -v j="$jit" -v t="$total" 'BEGIN{printf "%.1f", 100*j/t}')" "$findings" \
        "$((writing / 100))" \
        "${inactive:+   inactive: $inactive}"
    echo "#   PALISADE_CACHE_DIR=$PALISADE_CACHE_DIR valgrind --tool=callgrind --collect-atstart=no --toggle-collect='$toggle' --toggle-collect='$toggle_view' --toggle-collect='$toggle_write' $bin ${common[*]} --format json $args $x100"
done
