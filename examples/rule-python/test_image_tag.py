"""Unit tests of the rule's logic, natively (no component, no bindings):
`python3 -m unittest` in this folder, or `build.sh` before it builds."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

import image_tag

NO_TAG = "without a tag, so it pulls latest: each pull may get other content; set a version tag or a digest"
LATEST = "with the tag latest: each pull may get other content; set a version tag or a digest"


def check(obj):
    return image_tag.ImageTag().evaluate(json.dumps(obj))


class ImageTagTest(unittest.TestCase):
    def test_tags(self):
        # The Rust rule's own unit test (policies/image-tag/src/lib.rs).
        v = check(
            {
                "kind": "Pod",
                "spec": {
                    "initContainers": [{"name": "i", "image": "busybox"}],
                    "containers": [
                        {"name": "a", "image": "nginx:latest"},
                        {"name": "b", "image": "nginx:1.27"},
                        {"name": "c", "image": "localhost:5000/app"},
                        {"name": "d", "image": "app@sha256:abc"},
                    ],
                },
            }
        )
        self.assertEqual(
            [p for _, p in v], ["/spec/initContainers/0/image", "/spec/containers/0/image", "/spec/containers/2/image"]
        )
        self.assertEqual(v[0][0], f'container "i" uses image "busybox" {NO_TAG}')
        self.assertEqual(v[1][0], f'container "a" uses image "nginx:latest" {LATEST}')

    def test_all_nine_kinds_and_their_paths(self):
        pod = {"spec": {"ephemeralContainers": [{"name": "e", "image": "x:latest"}]}}
        paths = {
            "Pod": "/spec/ephemeralContainers/0/image",
            "PodTemplate": "/template/spec/ephemeralContainers/0/image",
            "CronJob": "/spec/jobTemplate/spec/template/spec/ephemeralContainers/0/image",
        }
        for kind in image_tag.POD_KINDS:
            if kind == "Pod":
                obj = {"kind": kind, **pod}
            elif kind == "PodTemplate":
                obj = {"kind": kind, "template": pod}
            elif kind == "CronJob":
                obj = {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": pod}}}}
            else:
                obj = {"kind": kind, "spec": {"template": pod}}
            expected = paths.get(kind, "/spec/template/spec/ephemeralContainers/0/image")
            self.assertEqual([p for _, p in check(obj)], [expected], kind)
        self.assertEqual(check({"kind": "Service", "spec": {"containers": [{"image": "x"}]}}), [])

    def test_nulls_are_absent(self):
        self.assertEqual(check({"kind": "Deployment", "spec": None, "metadata": None}), [])
        v = check({"kind": "Pod", "spec": {"initContainers": None, "containers": [{"name": None, "image": None}]}})
        self.assertEqual(v, [(f'container "" uses image "" {NO_TAG}', "/spec/containers/0/image")])

    def test_references(self):
        cases = {
            "nginx": (None, None),
            "registry.example.com:5000/team/app:1.2": ("1.2", None),
            "localhost:5000/app": (None, None),
            "app:": ("", None),
            "bitnami/redis:7@sha256:0123": ("7", "sha256:0123"),
            "app@": (None, ""),
        }
        for image, expected in cases.items():
            self.assertEqual(image_tag.parse_image(image), expected, image)
        # An empty tag is no tag; a digest, even an empty one, pins the image.
        v = check(
            {"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "app:"}, {"name": "b", "image": "a@"}]}}
        )
        self.assertEqual(v, [(f'container "a" uses image "app:" {NO_TAG}', "/spec/containers/0/image")])
        v = check({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "app:Latest"}]}})
        self.assertEqual(v, [], "the tag is compared as written")

    def test_names_are_quoted_as_rust_debug_does(self):
        self.assertEqual(image_tag.debug_str('a"b\\c\n\t\r\0'), '"a\\"b\\\\c\\n\\t\\r\\0"')
        self.assertEqual(
            image_tag.debug_str("\x01\x7f\u00a0\u200b\u0301é'"), '"\\u{1}\\u{7f}\\u{a0}\\u{200b}\\u{301}é\'"'
        )

    def test_wrong_types_are_errors_naming_the_field(self):
        with self.assertRaises(image_tag.EvaluationError) as e:
            check({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"image": 3}]}}}})
        self.assertEqual(
            str(e.exception),
            "cannot read the object: field `spec.template.spec.containers[0].image`: invalid type: integer `3`, "
            "expected a string",
        )
        with self.assertRaises(image_tag.EvaluationError):
            image_tag.ImageTag().evaluate("{")

    def test_settings(self):
        image_tag.configure("")
        image_tag.configure(" {} ")
        for settings, field, message in [
            ('{"b":1,"a":2}', "/a", "unknown field `a`, there are no fields"),
            ("[]", "", "settings must be an object"),
        ]:
            with self.assertRaises(image_tag.SettingsError) as e:
                image_tag.configure(settings)
            self.assertEqual((e.exception.field, e.exception.message), (field, message))
        with self.assertRaises(image_tag.SettingsError) as e:
            image_tag.configure("{")
        self.assertTrue(e.exception.message.startswith("settings are not valid JSON: "))


if __name__ == "__main__":
    unittest.main()
