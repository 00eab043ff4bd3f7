"""Run two `image-tag` components side by side, outside Palisade's host.

    compare.py RUST.wasm PYTHON.wasm [MANIFESTS...]

Loads both with wasmtime (the `wasmtime` package from PyPI, the same engine
as the host but another release), each in a store with the host's bounds
(64 MiB of memory, 1 s a call) and, for a component that imports WASI, a
deny-all WASI context: no preopened directory, no environment, no
arguments, no stdin, stdout and stderr captured and cut at 64 KiB, no
sockets (wasmtime's default: every address is refused), clocks and random
as wasmtime gives them. Then it

- compares the two components' `describe()`, field by field;
- evaluates every pod-bearing object of the manifests (YAML or JSON, a
  `List` read item by item) with both and compares the results (the
  violations, message and path, or the error);
- prints the price of each: size, compile time, instantiation, the first
  call (the Python interpreter's start), the mean evaluation time over the
  objects (best of `--rounds`), and the time of a call that does nothing
  (`inactive-reason`), the cost of this harness's own bindings in each.

Exit 0 when both agree on everything, 1 on a difference. This is a
measuring tool for the README's figures and the phase before the host runs
the component; the host's own test compares them through `palisade check`.
"""

import argparse
import json
import os
import sys
import threading
import time

import yaml
from wasmtime import Config, Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Record

POLICY = "palisade:policy/policy@0.3.2"
# The rule's own list of the nine pod-bearing kinds.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))
from image_tag import POD_KINDS  # noqa: E402
MEMORY = 64 << 20
CALL_TIMEOUT_S = 1.0
TICK_S = 0.005
OUTPUT_BOUND = 64 << 10


class Loader(yaml.SafeLoader):
    """YAML as the host reads it for this rule: dates stay strings, and a
    duplicate key makes the document an input error, not an object."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# YAML 1.1's `=` (the "value" key type) is a plain string in YAML 1.2.
Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def objects(paths):
    """(where, JSON) of every pod-bearing object under `paths`."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files += [os.path.join(root, n) for n in names if n.endswith((".yaml", ".yml", ".json"))]
        else:
            files.append(p)
    out = []
    skipped = 0
    for f in sorted(files):
        try:
            with open(f, encoding="utf-8") as fh:
                docs = list(yaml.load_all(fh, Loader=Loader))
        except (yaml.YAMLError, UnicodeDecodeError):
            skipped += 1
            continue
        for i, doc in enumerate(docs, 1):
            items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
            for j, obj in enumerate(items if isinstance(items, list) else []):
                if isinstance(obj, dict) and obj.get("kind") in POD_KINDS:
                    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)
                    out.append((f"{f}#{i}.{j}", text))
    return out, skipped


class Loaded:
    """One component, instantiated in its own bounded store."""

    def __init__(self, engine, path):
        self.path = path
        with open(path, "rb") as fh:
            self.bytes = fh.read()
        t = time.perf_counter()
        self.component = Component(engine, self.bytes)
        self.compile_s = time.perf_counter() - t
        self.engine = engine
        self.output = bytearray()
        linker = Linker(engine)
        self.wasi = any(name.startswith("wasi:") for name in self.imports())
        if self.wasi:
            linker.add_wasip2()
        with linker.root() as root:
            with root.add_instance("palisade:policy/inventory@0.3.2") as inv:
                inv.add_func("list-objects", lambda store, kind, namespace: [])
            with root.add_instance("palisade:policy/image-verification@0.3.2") as iv:
                for name in [
                    "status",
                    "policy-for",
                    "verify",
                    "trust-policies",
                    "attestation-requirements",
                    "attestations",
                ]:
                    iv.add_func(name, self.unused)
        self.store = Store(engine)
        self.store.set_limits(memory_size=MEMORY)
        if self.wasi:
            wasi = WasiConfig()  # nothing inherited, nothing preopened, no environment
            wasi.stdout_custom = self.capture
            wasi.stderr_custom = self.capture
            self.store.set_wasi(wasi)
        t = time.perf_counter()
        self.arm()
        self.instance = linker.instantiate(self.store, self.component)
        self.instantiate_s = time.perf_counter() - t
        iface = self.instance.get_export_index(self.store, POLICY)

        def func(name):
            return self.instance.get_func(self.store, self.instance.get_export_index(self.store, name, iface))

        self._describe = func("describe")
        self._create = func("[static]evaluator.create")
        self._evaluate = func("[method]evaluator.evaluate")
        self._inactive = func("[method]evaluator.inactive-reason")

    def imports(self):
        ty = self.component.type
        return list(ty.imports(self.engine))

    @staticmethod
    def unused(*_):
        raise RuntimeError("image-tag does not verify images")

    def capture(self, data):
        room = OUTPUT_BOUND - len(self.output)
        if room > 0:
            self.output += bytes(data[:room])

    def arm(self):
        self.store.set_epoch_deadline(int(CALL_TIMEOUT_S / TICK_S) + 1)

    def call(self, f, *args):
        self.arm()
        r = f(self.store, *args)
        f.post_return(self.store)
        return r

    def describe(self):
        m = self.call(self._describe)
        out = {k: v for k, v in vars(m).items() if k != "profiles"}
        out["profiles"] = [vars(p) for p in m.profiles]
        return out

    def create(self, settings):
        r = self.call(self._create, settings)
        return ("err", vars(r)) if isinstance(r, Record) else ("ok", r)

    def inactive_reason(self, evaluator):
        return self.call(self._inactive, evaluator)

    def evaluate(self, evaluator, obj):
        ctx = Record()
        for k, v in {"operation": "create", "namespace": None, "old-object": None, "user-info": None}.items():
            setattr(ctx, k, v)
        ctx.offline = True
        r = self.call(self._evaluate, evaluator, obj, ctx)
        if isinstance(r, str):
            return ("error", r)
        return ("ok", [(v.message, v.path) for v in r])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rust")
    ap.add_argument("python")
    ap.add_argument("manifests", nargs="*")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    config = Config()
    config.epoch_interruption = True
    config.cranelift_opt_level = "speed"
    engine = Engine(config)
    stop = threading.Event()

    def tick():
        while not stop.wait(TICK_S):
            engine.increment_epoch()

    threading.Thread(target=tick, daemon=True).start()

    rules = [Loaded(engine, args.rust), Loaded(engine, args.python)]
    failures = 0
    figures = []
    for r in rules:
        t = time.perf_counter()
        meta = r.describe()
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        meta = r.describe()
        again_s = time.perf_counter() - t
        r.meta = meta
        t = time.perf_counter()
        status, r.evaluator = r.create("{}")
        create_s = time.perf_counter() - t
        assert status == "ok", r.evaluator
        figures.append([r, first_s, again_s, create_s])

    rust, python = rules
    for key in rust.meta:
        if rust.meta[key] != python.meta.get(key):
            failures += 1
            print(f"describe().{key} differs:\n  rust:   {rust.meta[key]!r}\n  python: {python.meta.get(key)!r}")
    for settings in ['{"unknown":1}', '{"b":{},"a":[]}', "[]", ""]:
        a, b = rust.create(settings), python.create(settings)
        if a[0] == "ok" and b[0] == "ok":
            continue
        if a != b:
            failures += 1
            print(f"create({settings!r}) differs:\n  rust:   {a}\n  python: {b}")

    objs, skipped = objects(args.manifests)
    results = {}
    for r in rules:
        per = []
        for rnd in range(args.rounds):
            t = time.perf_counter()
            out = [r.evaluate(r.evaluator, text) for _, text in objs]
            per.append(time.perf_counter() - t)
            results[r.path] = out
        r.eval_s = min(per) / max(1, len(objs))
        # The floor: a call that does nothing, through the same bindings.
        t = time.perf_counter()
        for _ in range(1000):
            r.inactive_reason(r.evaluator)
        r.floor_s = (time.perf_counter() - t) / 1000
    findings = 0
    errors = 0
    for (where, _), a, b in zip(objs, results[rust.path], results[python.path]):
        findings += len(a[1]) if a[0] == "ok" else 0
        errors += a[0] == "error"
        if a != b:
            failures += 1
            if failures <= 20:
                print(f"{where}:\n  rust:   {a}\n  python: {b}")

    print(
        f"objects: {len(objs)} pod-bearing ({skipped} files PyYAML cannot read), findings: {findings}, errors: {errors}"
    )
    print(
        f"{'component':<40} {'bytes':>10} {'compile':>9} {'inst.':>8} {'1st call':>9} {'describe':>9} "
        f"{'create':>8} {'eval/obj':>9} {'no-op':>7} wasi output"
    )
    for r, first_s, again_s, create_s in figures:
        print(
            f"{os.path.basename(r.path):<40} {len(r.bytes):>10} {r.compile_s * 1e3:>7.0f}ms "
            f"{r.instantiate_s * 1e3:>6.2f}ms {first_s * 1e3:>7.2f}ms {again_s * 1e6:>7.0f}us "
            f"{create_s * 1e6:>6.0f}us {r.eval_s * 1e6:>7.1f}us {r.floor_s * 1e6:>5.1f}us "
            f"{'yes' if r.wasi else 'no':>4} {len(r.output)}B"
        )
    stop.set()
    print("agree" if failures == 0 else f"{failures} differences")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
