"""The `image-tag` rule of Palisade's catalog, in Python.

A port of `policies/image-tag/src/lib.rs` and the parts of the Rust SDK it
uses (`workload.rs`: where the pod sits in the nine pod-bearing kinds;
`image.rs`: the image reference grammar; `rule.rs`: settings, metadata).
Same id, metadata, settings and violations (message and path, byte for
byte), so that the two components can replace each other.

Plain Python: no import of the generated bindings, so it runs and is unit
tested natively (`python3 -m unittest` in this folder); `policy.py` is the
glue to the component's exports.
"""

import json
import unicodedata

# --- metadata (policies/image-tag/src/lib.rs, sdk rule.rs and workload.rs) ---

POD_KINDS = [
    "Pod",
    "PodTemplate",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "CronJob",
]

NO_SETTINGS_SCHEMA = '{"type":"object","additionalProperties":false,"properties":{}}'

METADATA = {
    "id": "image-tag",
    "title": "Images must have an explicit tag other than latest",
    "description": "Fails a pod with a container whose image has no tag or the tag `latest`, unless it "
    "is pinned by a digest.",
    "rationale": "A missing or `latest` tag means the image that runs depends on when the node "
    "pulled it: rollbacks do not roll back, nodes run different code, and a "
    "compromised upstream push reaches production unreviewed.",
    "remediation": "Use a versioned tag (nginx:1.27.3) or, better, pin the digest (nginx@sha256:...).",
    "severity": "medium",
    "category": "Images",
    "applies_to": POD_KINDS,
    "reads_kinds": [],
    "settings_schema": NO_SETTINGS_SCHEMA,
    "references": ["https://kubernetes.io/docs/concepts/containers/images/#image-names"],
    # (profile, settings JSON): the SDK's HARDENED.
    "profiles": [("hardened", "{}")],
}


class SettingsError(Exception):
    """A setting the rule refuses: JSON pointer of the field, and why."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


class EvaluationError(Exception):
    """The rule could not decide (the host reports it as the rule's error)."""


# --- settings (sdk rule.rs: parse_settings and NoSettings) ---


def configure(settings):
    """Check the settings object: `{}` (or nothing) and no key at all."""
    text = settings if settings.strip() else "{}"
    try:
        value = json.loads(text)
    except ValueError as e:
        raise SettingsError("", f"settings are not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise SettingsError("", "settings must be an object")
    if value:
        # serde_json reads an object's keys in sorted order (a BTreeMap) and
        # `deny_unknown_fields` stops at the first one.
        key = min(value)
        raise SettingsError("/" + key.replace(".", "/"), f"unknown field `{key}`, there are no fields")
    return ImageTag()


# --- Rust's `{:?}` of a string (core::fmt, char::escape_debug) ---

# Unicode's Other_Grapheme_Extend, which with the categories Mn and Me makes
# Grapheme_Extend: Rust escapes those characters in a string's Debug form.
_OTHER_GRAPHEME_EXTEND = (
    {0x09BE, 0x09D7, 0x0B3E, 0x0B57, 0x0BBE, 0x0BD7, 0x0CC2, 0x0CD5, 0x0CD6, 0x0D3E, 0x0D57, 0x0DCF, 0x0DDF}
    | {0x1B35, 0x200C, 0x302E, 0x302F, 0xFF9E, 0xFF9F, 0x1133E, 0x11357, 0x114B0, 0x114BD, 0x115AF, 0x11930}
    | {0x1D165, *range(0x1D16E, 0x1D173), *range(0x1F3FB, 0x1F400), *range(0xE0020, 0xE0080)}
)
_ESCAPES = {"\0": "\\0", "\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", '"': '\\"'}


def debug_str(s):
    """`format!("{:?}", s)` for a Rust `&str`: quoted, with Rust's escapes."""
    out = ['"']
    for c in s:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif " " <= c <= "~":
            out.append(c)
        elif unicodedata.category(c) in ("Mn", "Me") or ord(c) in _OTHER_GRAPHEME_EXTEND or not c.isprintable():
            # Python's isprintable and Rust's is_printable both refuse the
            # categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs but for the space.
            out.append(f"\\u{{{ord(c):x}}}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


# --- the pod of a workload (sdk workload.rs) ---

_EXPECTED = {dict: "a map", list: "a sequence", str: "a string"}


def _unexpected(value):
    """How serde names a JSON value of the wrong type."""
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    return "sequence" if isinstance(value, list) else "map"


def _expect(value, kind, field):
    """`value` as `kind` (dict, list or str), `null` and absence being empty
    (the SDK's `nullable`); another type is an error naming the field
    (`spec.containers[0].image`, as the SDK's `json_path::explain` does)."""
    if value is None:
        return kind()
    if isinstance(value, kind):
        return value
    where = f"field `{field}`: " if field else ""
    raise EvaluationError(
        f"cannot read the object: {where}invalid type: {_unexpected(value)}, expected {_EXPECTED[kind]}"
    )


def _template_spec(template, field):
    """The pod spec of a pod template (its `metadata` and `spec`)."""
    template = _expect(template, dict, field)
    return _expect(template.get("spec"), dict, f"{field}.spec")


def pod_spec(obj):
    """(pod spec, its field path, its JSON pointer) of a pod-bearing object;
    None for another kind."""
    obj = _expect(obj, dict, "")
    kind = _expect(obj.get("kind"), str, "kind")
    if kind not in POD_KINDS:
        return None
    spec = _expect(obj.get("spec"), dict, "spec")
    if kind == "Pod":
        return spec, "spec", "/spec"
    if kind == "PodTemplate":
        return _template_spec(obj.get("template"), "template"), "template.spec", "/template/spec"
    if kind == "CronJob":
        job = _expect(spec.get("jobTemplate"), dict, "spec.jobTemplate")
        job_spec = _expect(job.get("spec"), dict, "spec.jobTemplate.spec")
        field = "spec.jobTemplate.spec.template"
        return _template_spec(job_spec.get("template"), field), f"{field}.spec", "/spec/jobTemplate/spec/template/spec"
    return _template_spec(spec.get("template"), "spec.template"), "spec.template.spec", "/spec/template/spec"


def containers(obj):
    """Every container of the pod as (name, image, JSON pointer of the
    container), in Kubernetes' order (`visitContainers`): init, regular,
    ephemeral. Nothing for an object of another kind."""
    found = pod_spec(obj)
    if found is None:
        return
    spec, spec_field, spec_path = found
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for index, container in enumerate(_expect(spec.get(group), list, f"{spec_field}.{group}")):
            field = f"{spec_field}.{group}[{index}]"
            container = _expect(container, dict, field)
            name = _expect(container.get("name"), str, f"{field}.name")
            image = _expect(container.get("image"), str, f"{field}.image")
            yield name, image, f"{spec_path}/{group}/{index}"


# --- image references (sdk image.rs) ---


def parse_image(image):
    """(tag, digest) of an image reference; either is None when not written."""
    name, at, digest = image.partition("@")
    digest = digest if at else None
    # A tag follows the last `:` after the last `/` (a `:` before it is a registry port).
    last_slash = name.rfind("/") + 1
    colon = name.rfind(":", last_slash)
    tag = name[colon + 1 :] if colon >= 0 else None
    return tag, digest


# --- the rule (policies/image-tag/src/lib.rs) ---


class ImageTag:
    def evaluate(self, object_json):
        """[(message, path)] for one object, given as JSON."""
        try:
            obj = json.loads(object_json)
        except ValueError as e:
            raise EvaluationError(f"cannot read the object: {e}") from None
        out = []
        for name, image, path in containers(obj):
            tag, digest = parse_image(image)
            if digest is not None:
                continue
            subject = f"container {debug_str(name)} uses image {debug_str(image)}"
            if not tag:
                why = "without a tag, so it pulls latest"
            elif tag == "latest":
                why = "with the tag latest"
            else:
                continue
            message = f"{subject} {why}: each pull may get other content; set a version tag or a digest"
            out.append((message, f"{path}/image"))
        return out

    def inactive_reason(self):
        return None
