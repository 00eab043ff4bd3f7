"""The component's exports (`palisade:policy/policy` of `wit/policy.wit`):
the glue between the generated bindings (`wit_world`, made by
componentize-py from the WIT at build time) and the rule in `image_tag.py`.

componentize-py looks for the interface's class (`Policy`) in the app module
named on its command line, and for the class of each exported resource
(`Evaluator`) in a module named after the interface: this one is both.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import policy
from wit_world.imports import types

import image_tag

_SEVERITY = {
    "info": types.Severity.INFO,
    "low": types.Severity.LOW,
    "medium": types.Severity.MEDIUM,
    "high": types.Severity.HIGH,
    "critical": types.Severity.CRITICAL,
}


class Policy(exports.Policy):
    def describe(self) -> types.Metadata:
        m = image_tag.METADATA
        return types.Metadata(
            id=m["id"],
            title=m["title"],
            description=m["description"],
            rationale=m["rationale"],
            remediation=m["remediation"],
            severity=_SEVERITY[m["severity"]],
            category=m["category"],
            applies_to=list(m["applies_to"]),
            reads_kinds=list(m["reads_kinds"]),
            settings_schema=m["settings_schema"],
            references=list(m["references"]),
            profiles=[types.ProfileMembership(profile=p, settings=s) for p, s in m["profiles"]],
        )


class Evaluator(policy.Evaluator):
    def __init__(self, rule):
        self.rule = rule

    @classmethod
    def create(cls, settings: str) -> "Evaluator":
        try:
            return cls(image_tag.configure(settings))
        except image_tag.SettingsError as e:
            raise Err(types.SettingsError(field=e.field, message=e.message)) from None

    def evaluate(self, object: str, context: types.AdmissionContext) -> list[types.Violation]:
        try:
            found = self.rule.evaluate(object)
        except image_tag.EvaluationError as e:
            raise Err(str(e)) from None
        return [types.Violation(message=message, path=path) for message, path in found]

    def inactive_reason(self) -> str | None:
        return self.rule.inactive_reason()
