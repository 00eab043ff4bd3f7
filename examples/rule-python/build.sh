#!/usr/bin/env bash
# Build the Python `image-tag` rule into a Palisade policy component.
#
#   examples/rule-python/build.sh [--stub-wasi] [--out FILE] [--app DIR]
#
# Runs the rule's unit tests natively, then turns src/ into a component of
# the `rule` world of wit/policy.wit with componentize-py, installed at a
# pinned version into a virtual environment under the target directory
# (nothing is installed globally; a second run reuses it). Prints the
# component's path and size.
#
# --stub-wasi  replace every WASI import with a trapping stub: the component
#              then imports only Palisade's interfaces (a rule that prints,
#              reads the clock or random numbers traps instead).
# --out FILE   where to write the component
#              (default: $CARGO_TARGET_DIR or target/, then rule-python/image-tag.wasm).
# --app DIR    build another rule instead (no unit tests): DIR/*.py, whose module
#              `policy` holds `Policy` and `Evaluator`; with WIT in DIR/wit, the
#              world is `palisade:probe/probe` there (tests/policies-python/hostile).
#
# Needs python3 (3.9 or later) with venv and pip, and the package index.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/rule-python"
venv="$work/venv"
out="$work/image-tag.wasm"
stub=()
app_dir=""

while [ $# -gt 0 ]; do
    case "$1" in
        --stub-wasi) stub=(--stub-wasi) ;;
        --out)
            [ $# -ge 2 ] || { echo "build.sh: --out needs a file" >&2; exit 2; }
            # Absolute: componentize-py runs in the copy of the sources.
            case "$2" in /*) out="$2" ;; *) out="$PWD/$2" ;; esac
            shift
            ;;
        --app)
            [ $# -ge 2 ] || { echo "build.sh: --app needs a directory" >&2; exit 2; }
            app_dir="$(cd "$2" && pwd)"
            shift
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "build.sh: unknown argument $1 (see --help)" >&2
            exit 2
            ;;
    esac
    shift
done

python="${PYTHON:-python3}"
tool="$venv/bin/componentize-py"
if ! "$tool" --version 2>/dev/null | grep -qx "componentize-py $COMPONENTIZE_PY_VERSION"; then
    echo "installing componentize-py $COMPONENTIZE_PY_VERSION into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$work"
    "$python" -m venv "$venv" || {
        echo "build.sh: cannot create a virtual environment with $python (on Debian: apt-get install python3-venv)" >&2
        exit 1
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
        "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

# The world: `rule` of the repository's WIT (the contract the host has), and
# for --app, the world `probe` of DIR/wit merged into it.
version="$(sed -n 's/^package palisade:policy@\([^;]*\);.*/\1/p' "$root/wit/policy.wit")"
wit=(-d "$root/wit" -w "palisade:policy/rule@$version")
if [ -z "$app_dir" ]; then
    # The logic is plain Python: test it natively before building.
    (cd "$here" && PYTHONDONTWRITEBYTECODE=1 "$python" -m unittest --quiet test_image_tag)
    app_dir="$here/src"
    app="$work/src"
else
    app="$work/app-$(basename "$app_dir")"
    if [ -d "$app_dir/wit" ]; then
        # A merge of two worlds (`-w A -w B`) makes componentize-py 0.25.1 panic;
        # the world `probe` includes `rule` instead.
        wit=(-d "$root/wit" -d "$app_dir/wit" -w "palisade:probe/probe")
    fi
fi

# componentize-py imports the app with the build machine's Python too, so it
# reads a copy of the sources (no __pycache__ in the source tree).
rm -rf "$app"
mkdir -p "$app" "$(dirname "$out")"
cp "$app_dir"/*.py "$app/"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
start=${EPOCHREALTIME/[.,]/}
# The app module is `policy`: it holds `Policy`, and `Evaluator`, the class of
# the resource of the interface of the same name, where componentize-py looks
# for it.
(cd "$app" && "$tool" --quiet "${wit[@]}" componentize policy -p "$app" "${stub[@]}" -o "$tmp")
mv "$tmp" "$out"
elapsed=$(((${EPOCHREALTIME/[.,]/} - start) / 100000))
echo "$out ($(wc -c <"$out") bytes, built in $((elapsed / 10)).$((elapsed % 10)) s)"
