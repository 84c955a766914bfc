//! YAML access to the manifests under `deploy/k8s`, with messages that say which file and which
//! field, and the pods' environment.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use chat_server::settings::Settings;
use yaml_rust2::{Yaml, YamlLoader};

use super::settings::{load_cluster, with_dummy_secrets};
use super::{read, repo};

/// The namespace every manifest lives in; the ExternalName services' DNS names include it.
pub const NAMESPACE: &str = "chat";
/// The label every object of the deployment carries.
pub const NAME_LABEL: (&str, &str) = ("app.kubernetes.io/name", "message-service");
/// Manifests `kubectl apply -k` must not apply: placeholders only (the real Secret is made with
/// `kubectl create secret`), and the migrations Job, run on its own before a rollout.
pub const NOT_IN_KUSTOMIZATION: &[&str] = &["secret.example.yaml", "migrate-job.yaml"];
/// How long `/readyz` waits for the store (`routes/health.rs`): the probe's timeout must exceed
/// it, or a slow store reads as a dead pod.
pub const READYZ_STORE_WAIT_SECS: i64 = 2;

/// One YAML document of a manifest file.
pub struct Manifest {
    pub file: String,
    pub doc: Yaml,
}

impl Manifest {
    pub fn kind(&self) -> &str {
        self.doc["kind"].as_str().unwrap_or("?")
    }

    pub fn name(&self) -> &str {
        self.doc["metadata"]["name"].as_str().unwrap_or("?")
    }

    /// `file: Kind name`, for messages.
    pub fn what(&self) -> String {
        format!("deploy/k8s/{}: {} {}", self.file, self.kind(), self.name())
    }

    /// The node at `path` (map keys, or indexes into lists), `BadValue` when missing.
    pub fn at(&self, path: &str) -> &Yaml {
        node_at(&self.doc, path)
    }

    pub fn str_at(&self, path: &str) -> &str {
        self.at(path).as_str().unwrap_or_else(|| {
            panic!(
                "{}: {path} must be a string, found {:?}",
                self.what(),
                self.at(path)
            )
        })
    }

    pub fn int_at(&self, path: &str) -> i64 {
        self.at(path).as_i64().unwrap_or_else(|| {
            panic!(
                "{}: {path} must be an integer, found {:?}",
                self.what(),
                self.at(path)
            )
        })
    }

    pub fn list_at(&self, path: &str) -> &[Yaml] {
        self.at(path).as_vec().unwrap_or_else(|| {
            panic!(
                "{}: {path} must be a list, found {:?}",
                self.what(),
                self.at(path)
            )
        })
    }

    /// A map of strings, such as labels or a selector's matchLabels.
    pub fn labels_at(&self, path: &str) -> BTreeMap<String, String> {
        string_map(self.at(path)).unwrap_or_else(|| {
            panic!(
                "{}: {path} must be a map of strings, found {:?}",
                self.what(),
                self.at(path)
            )
        })
    }
}

/// Follows a dotted path; a segment that is a number indexes a list. Label keys contain dots,
/// so they are looked up with `labels_at` on their parent instead.
pub fn node_at<'a>(root: &'a Yaml, path: &str) -> &'a Yaml {
    path.split('.').fold(root, |node, segment| {
        match (node, segment.parse::<usize>()) {
            (Yaml::Array(_), Ok(index)) => &node[index],
            _ => &node[segment],
        }
    })
}

pub fn string_map(node: &Yaml) -> Option<BTreeMap<String, String>> {
    node.as_hash()?
        .iter()
        .map(|(key, value)| Some((key.as_str()?.to_owned(), value.as_str()?.to_owned())))
        .collect()
}

/// Every document of every `*.yaml` under deploy/k8s, each checked to be a named object.
pub fn manifests() -> Vec<Manifest> {
    let dir = repo().join("deploy/k8s");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml" || extension == "yml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifest in {}", dir.display());
    let mut all = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let docs = YamlLoader::load_from_str(&read(&path))
            .unwrap_or_else(|error| panic!("deploy/k8s/{file} is not valid YAML: {error}"));
        let mut named = 0;
        for doc in docs {
            // An empty document (a trailing `---`) is no object.
            if doc.is_null() {
                continue;
            }
            let manifest = Manifest {
                file: file.clone(),
                doc,
            };
            for field in ["apiVersion", "kind", "metadata.name"] {
                let value = manifest.at(field).as_str().unwrap_or("");
                assert!(
                    !value.is_empty(),
                    "deploy/k8s/{file}: a document has no {field} (found {:?})",
                    manifest.at(field)
                );
            }
            named += 1;
            all.push(manifest);
        }
        assert!(named > 0, "deploy/k8s/{file} holds no object");
    }
    all
}

/// The one manifest of `kind` that `filter` accepts.
pub fn one<'a>(
    all: &'a [Manifest],
    kind: &str,
    filter: impl Fn(&Manifest) -> bool,
) -> &'a Manifest {
    let found: Vec<&Manifest> = all
        .iter()
        .filter(|manifest| manifest.kind() == kind && filter(manifest))
        .collect();
    match found.as_slice() {
        [manifest] => manifest,
        [] => panic!("deploy/k8s has no {kind}"),
        many => panic!(
            "deploy/k8s has {} {kind} objects where one was expected: {:?}",
            many.len(),
            many.iter()
                .map(|manifest| manifest.what())
                .collect::<Vec<_>>()
        ),
    }
}

pub fn deployment(all: &[Manifest]) -> &Manifest {
    one(all, "Deployment", |_| true)
}

pub fn migrate_job(all: &[Manifest]) -> &Manifest {
    one(all, "Job", |_| true)
}

pub fn config_map(all: &[Manifest]) -> &Manifest {
    one(all, "ConfigMap", |_| true)
}

pub fn secret(all: &[Manifest]) -> &Manifest {
    one(all, "Secret", |_| true)
}

/// The Service in front of the pods (the others are ExternalName services).
pub fn service(all: &[Manifest]) -> &Manifest {
    one(all, "Service", |manifest| {
        manifest.at("spec.type").as_str() != Some("ExternalName")
    })
}

/// The ExternalName services: name → the manifest.
pub fn external_services(all: &[Manifest]) -> BTreeMap<String, &Manifest> {
    all.iter()
        .filter(|manifest| {
            manifest.kind() == "Service"
                && manifest.at("spec.type").as_str() == Some("ExternalName")
        })
        .map(|manifest| (manifest.name().to_owned(), manifest))
        .collect()
}

/// The only container of a pod template at `spec.template.spec`.
pub fn only_container(workload: &Manifest) -> &Yaml {
    match workload.list_at("spec.template.spec.containers") {
        [container] => container,
        other => panic!(
            "{}: expected one container, found {}",
            workload.what(),
            other.len()
        ),
    }
}

/// `command` followed by `args`, as one command line.
pub fn command_line(workload: &Manifest, container: &Yaml) -> Vec<String> {
    ["command", "args"]
        .iter()
        .flat_map(|field| container[*field].as_vec().cloned().unwrap_or_default())
        .map(|word| {
            word.as_str()
                .unwrap_or_else(|| panic!("{}: command words must be strings", workload.what()))
                .to_owned()
        })
        .collect()
}

/// The ConfigMap's data; Kubernetes refuses anything but strings there.
pub fn config_map_data(all: &[Manifest]) -> BTreeMap<String, String> {
    let config_map = config_map(all);
    let data = config_map.at("data").as_hash().unwrap_or_else(|| {
        panic!("{}: data must be a map", config_map.what());
    });
    data.iter()
        .map(|(key, value)| {
            let key = key.as_str().unwrap_or_else(|| {
                panic!("{}: data key {key:?} is not a string", config_map.what())
            });
            let value = value.as_str().unwrap_or_else(|| {
                panic!(
                    "{}: data.{key} is {value:?}; ConfigMap values must be strings (quote it)",
                    config_map.what()
                )
            });
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// The Secret example's keys with their placeholder values.
pub fn secret_example(all: &[Manifest]) -> BTreeMap<String, String> {
    let secret = secret(all);
    let data = secret.at("stringData");
    string_map(data).unwrap_or_else(|| {
        panic!(
            "{}: stringData must be a map of strings, found {data:?}",
            secret.what()
        )
    })
}

/// The cluster environment of the pods: ConfigMap, Secret (dummy values), and the container's
/// own `env` (which Kubernetes applies over `envFrom`).
pub fn pod_environment(all: &[Manifest]) -> BTreeMap<String, String> {
    let mut variables = config_map_data(all);
    variables.extend(with_dummy_secrets(&secret_example(all)));
    let deployment = deployment(all);
    let container = only_container(deployment);
    for entry in container["env"].as_vec().cloned().unwrap_or_default() {
        let name = entry["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: an env entry has no name", deployment.what()))
            .to_owned();
        let value = match (
            entry["value"].as_str(),
            entry["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        ) {
            (Some(value), _) => value.to_owned(),
            (None, Some("metadata.name")) => "message-service-5d9c7b-x2x7q".to_owned(),
            _ => panic!(
                "{}: env {name} is neither a value nor metadata.name; teach the test about it",
                deployment.what()
            ),
        };
        variables.insert(name, value);
    }
    variables
}

pub fn pod_settings(all: &[Manifest]) -> Settings {
    load_cluster(
        "deploy/k8s ConfigMap + Secret + Deployment env",
        &pod_environment(all),
    )
}
