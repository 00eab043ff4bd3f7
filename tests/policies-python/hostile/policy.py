"""A hostile rule: tries what a policy must not do, and reports each outcome as
a violation, so tests/second_language.rs can check that the host's WASI
context (docs/wasi.md) denies it. Built with the same toolchain as
examples/rule-python (`examples/rule-python/build.sh --app tests/policies-python/hostile`).

The Pod's name says what to try:
- `read-files`: the file at the annotation `path`, `/`, the working directory, writing a file;
- `environment`: environment variables, arguments, the working directory, stdin;
- `network`: Python's `socket`, then WASI sockets directly (TCP, UDP, name lookup);
- `sleep`: `time.sleep(10)`, reporting the clocks before and after;
- `clock-and-random`: the wall clock, `random` and `os.urandom`;
- `flood`: a megabyte to stdout and stderr, then one violation;
- `raise`: an uncaught exception;
- `exit`: `os._exit(3)` (WASI's `exit`);
anything else: no violation.
"""

import json
import os
import sys

from wit_world import exports
from wit_world.exports import policy
from wit_world.imports import (
    instance_network,
    ip_name_lookup,
    network as net,
    tcp_create_socket,
    types,
    udp_create_socket,
)

# Only modules imported at build time are in the component: import them here.
import random
import time


def attempt(f):
    """`ok: <result>` or `<exception type>: <message>`."""
    try:
        return "ok: " + repr(f())[:300]
    except BaseException as e:  # noqa: BLE001: the outcome is the point
        return f"{type(e).__name__}: {e}"[:300]


def wasi_error(f):
    """The same, for a generated binding: an `Err` carries a WASI error code."""
    try:
        return "ok: " + repr(f())[:300]
    except BaseException as e:  # noqa: BLE001
        value = getattr(e, "value", None)
        return f"{type(e).__name__}: {getattr(value, 'name', value)}"[:300]


def read_files(annotations):
    path = annotations.get("path", "/etc/passwd")
    return {
        "open " + path: attempt(lambda: open(path).read()),
        "listdir /": attempt(lambda: os.listdir("/")),
        "listdir .": attempt(lambda: os.listdir(".")),
        "write ./x": attempt(lambda: open("x", "w").write("x")),
    }


def environment():
    return {
        "environ": attempt(lambda: dict(os.environ)),
        "argv": attempt(lambda: sys.argv),
        "cwd": attempt(os.getcwd),
        "stdin": attempt(lambda: sys.stdin.read()),
    }


def network():
    def connect():
        sock = tcp_create_socket.create_tcp_socket(net.IpAddressFamily.IPV4)
        address = net.IpSocketAddress_Ipv4(net.Ipv4SocketAddress(port=22, address=(127, 0, 0, 1)))
        sock.start_connect(instance_network.instance_network(), address)
        return "connecting"

    def lookup():
        stream = ip_name_lookup.resolve_addresses(instance_network.instance_network(), "localhost")
        return stream.resolve_next_address()

    return {
        "import socket": attempt(lambda: __import__("socket")),
        "tcp connect 127.0.0.1:22": wasi_error(connect),
        "udp socket": wasi_error(lambda: udp_create_socket.create_udp_socket(net.IpAddressFamily.IPV4)),
        "resolve localhost": wasi_error(lookup),
    }


def sleep():
    wall, mono = time.time(), time.monotonic()
    time.sleep(10)
    return {
        "slept": f"monotonic {time.monotonic() - mono:.1f} s, wall {time.time() - wall:.1f} s",
    }


def clock_and_random():
    return {
        "time": attempt(time.time),
        "random": attempt(random.random),
        "urandom": attempt(lambda: os.urandom(8).hex()),
    }


def flood():
    for i in range(10_000):
        print(f"line {i} " + "x" * 90)
    print("e" * 100_000, file=sys.stderr)
    print("the last line")
    return {"flooded": "done"}


class Policy(exports.Policy):
    def describe(self) -> types.Metadata:
        return types.Metadata(
            id="hostile-probe",
            title="Tries what a policy must not do",
            description="A test rule: reads files, the environment and the network, sleeps, prints.",
            rationale="The host's WASI context must deny all of it.",
            remediation="None: it is a test.",
            severity=types.Severity.LOW,
            category="test",
            applies_to=["Pod"],
            reads_kinds=[],
            settings_schema='{"type": "object"}',
            references=[],
            profiles=[],
        )


class Evaluator(policy.Evaluator):
    @classmethod
    def create(cls, settings: str) -> "Evaluator":
        return cls()

    def evaluate(self, object: str, context: types.AdmissionContext) -> list[types.Violation]:
        metadata = json.loads(object).get("metadata", {})
        action = metadata.get("name", "")
        if action == "read-files":
            outcomes = read_files(metadata.get("annotations", {}))
        elif action == "environment":
            outcomes = environment()
        elif action == "network":
            outcomes = network()
        elif action == "sleep":
            outcomes = sleep()
        elif action == "clock-and-random":
            outcomes = clock_and_random()
        elif action == "flood":
            outcomes = flood()
        elif action == "raise":
            raise RuntimeError("a bug in the rule, raised on purpose")
        elif action == "exit":
            os._exit(3)
        else:
            outcomes = {}
        return [types.Violation(message=f"{k} -> {v}", path="") for k, v in outcomes.items()]

    def inactive_reason(self) -> str | None:
        return None
