//! `fields::paths` against the parse it describes: for every mask, reading an
//! object pruned to `paths(reads)` (as the contract's `input.reads` lets a host
//! prune it, with `fields::prune`) gives the same `Workload`, or the same
//! error, as reading the whole object. On the shared corpus (real-world
//! manifests and the Pod Security Standards fixtures, also wrapped in the
//! other pod-bearing kinds), and on objects with a wrong value at every path
//! the parse reads and at every node above one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use palisade_sdk::fields::{paths, prune};
use palisade_sdk::{Fields, Workload};
use serde_json::{Value, json};
use yaml_rust2::{Yaml, YamlLoader};

/// All, none, every named part, and three unions.
const MASKS: [(&str, Fields); 24] = {
    let mut masks = [("ALL", Fields::ALL); 24];
    masks[1] = ("NONE", Fields::NONE);
    let mut i = 0;
    while i < palisade_sdk::fields::NAMED.len() {
        masks[i + 2] = palisade_sdk::fields::NAMED[i];
        i += 1;
    }
    masks[21] = (
        "SECURITY_CONTEXT|POD_SECURITY_CONTEXT|ANNOTATIONS",
        Fields::SECURITY_CONTEXT.union(Fields::POD_SECURITY_CONTEXT).union(Fields::ANNOTATIONS),
    );
    masks[22] = ("CONTAINERS|VOLUMES", Fields::CONTAINERS.union(Fields::VOLUMES));
    masks[23] = ("LIVENESS_PROBE|READINESS_PROBE", Fields::LIVENESS_PROBE.union(Fields::READINESS_PROBE));
    masks
};

/// JSON pointers split into unescaped segments (RFC 6901).
fn split(pointers: &[String]) -> Vec<Vec<String>> {
    pointers.iter().map(|p| p.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect()).collect()
}

/// `paths(reads)` of each mask, split, in the order of [`MASKS`].
fn split_paths() -> Vec<Vec<Vec<String>>> {
    MASKS.iter().map(|(_, reads)| split(&paths(*reads))).collect()
}

fn prune_to(value: &Value, split: &[Vec<String>]) -> Value {
    let segments: Vec<&[String]> = split.iter().map(Vec::as_slice).collect();
    prune(value, &segments)
}

/// The outcome of a parse, errors included, as text.
fn outcome(json: &str, reads: Fields) -> String {
    format!("{:?}", Workload::from_json_reading(json, reads))
}

/// One comparison: the outcomes of the whole and the pruned object, and both sizes.
struct Compared {
    whole: String,
    pruned: String,
    whole_bytes: usize,
    pruned_bytes: usize,
}

/// The mismatches found, the first few spelled out.
#[derive(Default)]
struct Mismatches {
    count: usize,
    shown: Vec<String>,
}

impl Mismatches {
    fn note(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.shown.len() < 5 {
            self.shown.push(what());
        }
    }

    fn assert_none(&self) {
        assert!(self.count == 0, "{} mismatches; the first:\n{}", self.count, self.shown.join("\n\n"));
    }
}

/// Compares the whole and the pruned object's parses with every mask ([`MASKS`],
/// `split` their paths), noting each mismatch.
fn check(value: &Value, label: &str, split: &[Vec<Vec<String>>], mismatches: &mut Mismatches) -> Vec<Compared> {
    let whole_text = value.to_string();
    MASKS
        .iter()
        .zip(split)
        .map(|((name, reads), split)| {
            let pruned_text = prune_to(value, split).to_string();
            let c = Compared {
                whole: outcome(&whole_text, *reads),
                pruned: outcome(&pruned_text, *reads),
                whole_bytes: whole_text.len(),
                pruned_bytes: pruned_text.len(),
            };
            if c.whole != c.pruned {
                mismatches.note(|| {
                    format!(
                        "{label}, mask {name}:\n  input:  {whole_text}\n  pruned: {pruned_text}\n  whole parse:  {}\n  pruned parse: {}",
                        c.whole, c.pruned
                    )
                });
            }
            c
        })
        .collect()
}

// ---------------------------------------------------------------- the corpus

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())).path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json") {
            out.push(path);
        }
    }
}

fn key_text(key: &Yaml) -> String {
    match key {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Null => "null".to_string(),
        other => format!("{other:?}"),
    }
}

fn yaml_to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => {
            y.as_f64().and_then(serde_json::Number::from_f64).map_or_else(|| Value::String(s.clone()), Value::Number)
        }
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(map) => Value::Object(map.iter().map(|(k, v)| (key_text(k), yaml_to_json(v))).collect()),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

/// The objects (JSON objects with a string `kind`) of a document, the items of a `List` too.
fn objects_of(doc: Value, out: &mut Vec<Value>) {
    if !doc.get("kind").is_some_and(Value::is_string) {
        return;
    }
    if doc["kind"] == "List"
        && let Some(items) = doc.get("items").and_then(Value::as_array)
    {
        for item in items.clone() {
            objects_of(item, out);
        }
    }
    out.push(doc);
}

/// Every object of the corpus files, and how many files could not be read.
fn corpus_objects(dirs: &[&str]) -> (Vec<(String, Value)>, usize) {
    let mut files = Vec::new();
    for dir in dirs {
        files_under(&corpus().join(dir), &mut files);
    }
    files.sort();
    let mut objects = Vec::new();
    let mut unreadable = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let docs = match serde_json::from_str::<Value>(&text) {
            Ok(doc) => vec![doc],
            Err(_) => match YamlLoader::load_from_str(&text) {
                Ok(docs) => docs.iter().map(yaml_to_json).collect(),
                Err(_) => {
                    unreadable += 1;
                    continue;
                }
            },
        };
        let mut found = Vec::new();
        for doc in docs {
            objects_of(doc, &mut found);
        }
        let name = file.strip_prefix(corpus()).unwrap_or(&file).display().to_string();
        objects.extend(found.into_iter().enumerate().map(|(i, o)| (format!("{name} #{i}"), o)));
    }
    (objects, unreadable)
}

/// A Pod as one of the other pod-bearing kinds, by `n`.
fn wrap(pod: &Value, n: usize) -> Value {
    const KINDS: [&str; 8] = [
        "Deployment",
        "CronJob",
        "PodTemplate",
        "StatefulSet",
        "ReplicationController",
        "Job",
        "DaemonSet",
        "ReplicaSet",
    ];
    let kind = KINDS[n % KINDS.len()];
    let template = json!({"metadata": pod["metadata"], "spec": pod["spec"]});
    let meta = json!({"name": "wrapped", "labels": {"app": "x"}, "annotations": {"a": "b"}});
    match kind {
        "PodTemplate" => json!({"kind": kind, "metadata": meta, "template": template}),
        "CronJob" => json!({"kind": kind, "metadata": meta,
            "spec": {"schedule": "* * * * *", "jobTemplate": {"metadata": {"labels": {"j": "1"}}, "spec": {"template": template}}}}),
        "ReplicationController" => {
            json!({"kind": kind, "metadata": meta, "spec": {"replicas": 2, "selector": {"app": "x"}, "template": template}})
        }
        _ => json!({"kind": kind, "metadata": meta, "status": {"replicas": 1},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}}, "template": template,
                "volumeClaimTemplates": [{"metadata": {"name": "d", "labels": {"a": "b"}}, "spec": {"storageClassName": "fast", "accessModes": ["ReadWriteOnce"]}}]}}),
    }
}

#[test]
fn the_corpus_parses_alike_whole_and_pruned() {
    let (mut objects, unreadable) = corpus_objects(&["real-world", "pss"]);
    let real_world = objects.iter().filter(|(name, _)| name.starts_with("real-world")).count();
    // Every other Pod of the PSS fixtures also as another pod-bearing kind, for the template paths.
    let wrapped: Vec<(String, Value)> = objects
        .iter()
        .filter(|(name, o)| name.starts_with("pss") && o["kind"] == "Pod")
        .step_by(2)
        .enumerate()
        .map(|(n, (name, pod))| (format!("{name} wrapped"), wrap(pod, n)))
        .collect();
    let wrapped_count = wrapped.len();
    objects.extend(wrapped);

    let split = split_paths();
    let none = MASKS.iter().position(|(name, _)| *name == "NONE").unwrap_or_default();
    let mut mismatches = Mismatches::default();
    let mut workloads = 0;
    let mut errors = 0;
    let mut whole_bytes = [0usize; MASKS.len()];
    let mut pruned_bytes = [0usize; MASKS.len()];
    // A parse with every part of an object pruned to no part must differ from
    // the whole object's: the comparison sees what pruning drops.
    let mut over_pruned_differs = 0;
    for (label, object) in &objects {
        let compared = check(object, label, &split, &mut mismatches);
        for (mask, c) in compared.iter().enumerate() {
            whole_bytes[mask] += c.whole_bytes;
            pruned_bytes[mask] += c.pruned_bytes;
        }
        // `MASKS[0]` is `Fields::ALL`.
        let all = &compared[0].whole;
        workloads += usize::from(all.starts_with("Ok(Some("));
        errors += usize::from(all.starts_with("Err("));
        let over_pruned = prune_to(object, &split[none]).to_string();
        over_pruned_differs += usize::from(outcome(&over_pruned, Fields::ALL) != *all);
    }
    eprintln!(
        "{} objects ({real_world} real-world, {wrapped_count} wrapped PSS pods), {workloads} workloads, \
         {errors} errors, {unreadable} unreadable files; over-pruned differ: {over_pruned_differs}",
        objects.len()
    );
    mismatches.assert_none();
    for (mask, (name, _)) in MASKS.iter().enumerate() {
        eprintln!("{name}: {} of {} bytes", pruned_bytes[mask], whole_bytes[mask]);
        assert!(pruned_bytes[mask] < whole_bytes[mask], "{name} prunes nothing");
    }
    let security_context = MASKS.iter().position(|(name, _)| *name == "SECURITY_CONTEXT").unwrap_or_default();
    assert!(
        pruned_bytes[security_context] * 2 < whole_bytes[security_context],
        "SECURITY_CONTEXT keeps more than half of the corpus"
    );
    // Observed: 7690 objects (884 real-world, 2269 wrapped PSS pods), 6993 workloads, 6996 over-pruned differ.
    assert!(real_world >= 700, "{real_world} real-world objects");
    assert!(wrapped_count >= 1800, "{wrapped_count} wrapped PSS pods");
    assert!(workloads >= 5600, "{workloads} workloads");
    assert!(over_pruned_differs >= 5600, "{over_pruned_differs} objects read alike pruned to no part");
}

// ---------------------------------------------------------- hostile shapes

fn pod_spec() -> Value {
    let container = |name: &str| {
        json!({"name": name, "image": "app:1", "ports": [{"containerPort": 80, "hostPort": 80}],
            "securityContext": {"privileged": true, "capabilities": {"drop": ["ALL"]}},
            "resources": {"limits": {"cpu": "1"}}, "env": [{"name": "A", "valueFrom": {"fieldRef": {}}}],
            "livenessProbe": {"httpGet": {"host": "h"}}, "readinessProbe": {"tcpSocket": {}}, "startupProbe": {},
            "lifecycle": {"preStop": {"httpGet": {"host": "h"}}}, "volumeMounts": [{"name": "v"}]})
    };
    json!({"hostNetwork": true, "hostPID": false, "hostIPC": false, "hostUsers": false, "os": {"name": "linux"},
        "restartPolicy": "Always", "automountServiceAccountToken": false, "serviceAccountName": "sa", "serviceAccount": "sa",
        "securityContext": {"runAsNonRoot": true, "sysctls": [{"name": "s"}]},
        "volumes": [{"name": "v", "hostPath": {"path": "/"}}, {"name": "w", "emptyDir": null}],
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone"}]}},
        "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 1}],
        "initContainers": [container("init")], "containers": [container("app")],
        "ephemeralContainers": [container("debug")], "nodeName": "n1", "dnsPolicy": "ClusterFirst"})
}

fn meta() -> Value {
    json!({"name": "o", "namespace": "ns", "labels": {"app": "x"}, "annotations": {"a": "b"}, "uid": "u"})
}

/// Where each base object's pod spec sits (its containers are read there).
const LIVE: [(&str, &str); 4] = [
    ("Deployment", "spec/template/spec"),
    ("Pod", "spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
    ("PodTemplate", "template/spec"),
];

/// The pod spec a pointer into a container (`.../containers/0/...`) is under.
fn container_location(pointer: &str) -> Option<String> {
    let segments: Vec<&str> = pointer.split('/').collect();
    let at = segments.windows(2).position(|w| w[0].ends_with("ontainers") && w[1] == "0")?;
    Some(segments[..at].join("/"))
}

fn hostile_bases() -> Vec<Value> {
    let template = json!({"metadata": meta(), "spec": pod_spec()});
    let mut pod = json!({"kind": "Pod", "apiVersion": "v1", "metadata": meta(), "spec": pod_spec(), "status": {"phase": "Running"}});
    pod["spec"]["replicas"] = json!(1);
    vec![
        json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": meta(), "status": {"replicas": 1},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "x"}}, "template": template,
                "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"storageClassName": "fast"}}]}}),
        pod,
        json!({"kind": "CronJob", "apiVersion": "batch/v1", "metadata": meta(),
            "spec": {"schedule": "* * * * *", "jobTemplate": {"metadata": meta(), "spec": {"backoffLimit": 1, "template": template}}}}),
        json!({"kind": "PodTemplate", "apiVersion": "v1", "metadata": meta(), "template": template}),
    ]
}

/// Sets the value at `segments`, creating missing objects (an array of one
/// object for a missing array); false where a scalar or a short array is in the way.
fn set(target: &mut Value, segments: &[&str], new: Value) -> bool {
    let Some((first, rest)) = segments.split_first() else {
        *target = new;
        return true;
    };
    let child = match target {
        Value::Object(map) => map
            .entry(first.to_string())
            .or_insert_with(|| if rest.first() == Some(&"0") { json!([{}]) } else { json!({}) }),
        Value::Array(items) => match first.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
            Some(item) => item,
            None => return false,
        },
        _ => return false,
    };
    set(child, rest, new)
}

/// Values of the wrong type for any field; at a node with paths below it
/// (`inner`), also an object and an array holding wrongly typed fields.
fn wrong_values(inner: bool) -> Vec<Value> {
    let mut values = vec![json!("x"), json!(7), json!([1, "x"]), json!({"a": 1}), Value::Null, json!(true)];
    if inner {
        values.push(json!({"a": {"name": "x", "securityContext": {"privileged": "yes"}}}));
        values.push(json!([{"name": 1, "securityContext": "x", "ports": {"a": 1}}]));
    }
    values
}

#[test]
fn wrong_types_anywhere_parse_alike_whole_and_pruned() {
    // Every path a parse with any mask reads (`*` as the first element) and every node above one.
    let leaves: BTreeSet<String> =
        MASKS.iter().flat_map(|(_, reads)| paths(*reads)).map(|p| p[1..].replace("/*", "/0")).collect();
    let mut pointers = BTreeSet::new();
    for leaf in &leaves {
        let segments: Vec<&str> = leaf.split('/').collect();
        for end in 1..=segments.len() {
            pointers.insert(segments[..end].join("/"));
        }
    }
    let split = split_paths();
    let mut mismatches = Mismatches::default();
    let (mut compared, mut skipped, mut errors, mut masked_away) = (0, 0, 0, 0);
    for base in hostile_bases() {
        let kind = base["kind"].as_str().unwrap_or_default().to_string();
        let live = LIVE.iter().find(|(k, _)| *k == kind).map(|(_, at)| *at);
        // The containers of a pod spec the kind does not use are read and
        // dropped alike for every kind: they are tried on the Pod only (the
        // Pod's parse reads `/spec/template` and `/spec/jobTemplate` too).
        let pointers = pointers
            .iter()
            .filter(|p| kind == "Pod" || container_location(p).is_none_or(|at| Some(at.as_str()) == live));
        for pointer in pointers {
            let segments: Vec<&str> = pointer.split('/').collect();
            for wrong in wrong_values(!leaves.contains(pointer)) {
                let mut object = base.clone();
                if !set(&mut object, &segments, wrong.clone()) {
                    skipped += 1;
                    continue;
                }
                let label = format!("{kind} with /{pointer} = {wrong}");
                let outcomes = check(&object, &label, &split, &mut mismatches);
                compared += outcomes.len();
                // `MASKS[0]` is `Fields::ALL`.
                if outcomes[0].whole.starts_with("Err(") {
                    errors += 1;
                    masked_away += outcomes.iter().filter(|c| !c.whole.starts_with("Err(")).count();
                }
            }
        }
    }
    eprintln!(
        "{} pointers, {compared} comparisons, {skipped} skipped; {errors} objects fail to parse with ALL, \
         {masked_away} times a mask skips the wrong value",
        pointers.len()
    );
    mismatches.assert_none();
    // Observed: 244 pointers, 82004 comparisons, 0 skipped, 3008 errors, 26544 masked away.
    assert!(pointers.len() >= 200 && compared >= 65_000, "{} pointers, {compared} comparisons", pointers.len());
    assert!(errors >= 2400 && masked_away >= 21_000, "{errors} errors, {masked_away} masked away");
}

// ----------------------------------------------------------- what is dropped

#[test]
fn keys_outside_the_paths_are_dropped() {
    let pod = json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "p", "labels": {"app": "x"}, "managedFields": [{"manager": "kubectl", "fieldsV1": {}}]},
        "spec": {"volumes": [{"name": "v", "emptyDir": {}}],
            "containers": [
                {"name": "a", "image": "i", "securityContext": {"privileged": true, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}], "ports": [{"containerPort": 80}]},
                {"name": "b", "volumeMounts": [], "securityContext": {"runAsUser": 0}}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "a"}]}});
    let pruned = prune_to(&pod, &split(&paths(Fields::SECURITY_CONTEXT)));
    for gone in [
        "/apiVersion",
        "/status",
        "/metadata/managedFields",
        "/metadata/labels",
        "/spec/volumes",
        "/spec/containers/0/volumeMounts",
        "/spec/containers/0/ports",
        "/spec/containers/1/volumeMounts",
        "/spec/containers/0/image",
    ] {
        assert!(pruned.pointer(gone).is_none(), "{gone} kept: {pruned}");
        assert!(pod.pointer(gone).is_some(), "{gone} is not in the input");
    }
    for kept in [
        "/kind",
        "/metadata/name",
        "/spec/containers/0/securityContext",
        "/spec/containers/0/name",
        "/spec/containers/1/securityContext",
    ] {
        assert_eq!(pruned.pointer(kept), pod.pointer(kept), "{kept}: {pruned}");
        assert!(pruned.pointer(kept).is_some(), "{kept} dropped: {pruned}");
    }
    let whole = pod.to_string();
    assert!(pruned.to_string().len() < whole.len() / 2, "{pruned}");
    assert_eq!(outcome(&pruned.to_string(), Fields::SECURITY_CONTEXT), outcome(&whole, Fields::SECURITY_CONTEXT));
}
