//! The deployment files, checked against each other and against the real settings: the
//! Kubernetes manifests under `deploy/k8s` and the systemd unit under `deploy/systemd`. There is
//! no cluster or systemd here to apply them to, so a mismatch (a probe on the wrong port, a
//! selector that misses the pods, a setting the service does not know, a grace period shorter
//! than the drain) would otherwise first show up as a failed rollout. Every manifest must parse;
//! the ConfigMap plus the Secret's keys, and the unit's environment plus its environment file,
//! must load as the cluster profile's `Settings` and pass the same checks the service makes at
//! start-up. No network.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chat_server::settings::{
    CacheAdapter, EventsAdapter, FanOutAdapter, LogFormat, Profile, Settings, StoreAdapter,
};
use secrecy::ExposeSecret as _;
use yaml_rust2::{Yaml, YamlLoader};

/// The namespace every manifest lives in; the ExternalName services' DNS names include it.
const NAMESPACE: &str = "chat";
/// The label every object of the deployment carries.
const NAME_LABEL: (&str, &str) = ("app.kubernetes.io/name", "message-service");
/// Manifests `kubectl apply -k` must not apply: placeholders only (the real Secret is made with
/// `kubectl create secret`), and the migrations Job, run on its own before a rollout.
const NOT_IN_KUSTOMIZATION: &[&str] = &["secret.example.yaml", "migrate-job.yaml"];
/// The secrets every deployment sets (the cluster profile refuses the development ones).
const SECRET_KEYS: &[&str] = &[
    "CHAT__AUTH__JWT_SECRET",
    "CHAT__CRYPTO__ACTIVE_KEY_ID",
    "CHAT__CRYPTO__KEYS__1",
    "CHAT__CRYPTO__DIGEST_KEY",
];
/// Variables the command line reads (`cli.rs`), not `Settings`.
const CLI_VARIABLES: &[&str] = &["CHAT_PROFILE", "CHAT_CONFIG_DIR"];
/// Settings with a serde default but no line in `config/*.toml`.
const OPTIONAL_SETTINGS: &[&str] = &[
    "cassandra.username",
    "cassandra.password",
    "redis.username",
    "redis.password",
    "kafka.client_id",
];
/// Map settings: any key below these prefixes is valid.
const MAP_SETTINGS: &[&str] = &["cassandra.replication.datacenters.", "crypto.keys."];
/// How long `/readyz` waits for the store (`routes/health.rs`): the probe's timeout must exceed
/// it, or a slow store reads as a dead pod.
const READYZ_STORE_WAIT_SECS: i64 = 2;
/// The instance the systemd unit is checked as.
const UNIT_INSTANCE: &str = "8181";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// YAML access with messages that say which file and which field.

/// One YAML document of a manifest file.
struct Manifest {
    file: String,
    doc: Yaml,
}

impl Manifest {
    fn kind(&self) -> &str {
        self.doc["kind"].as_str().unwrap_or("?")
    }

    fn name(&self) -> &str {
        self.doc["metadata"]["name"].as_str().unwrap_or("?")
    }

    /// `file: Kind name`, for messages.
    fn what(&self) -> String {
        format!("deploy/k8s/{}: {} {}", self.file, self.kind(), self.name())
    }

    /// The node at `path` (map keys, or indexes into lists), `BadValue` when missing.
    fn at(&self, path: &str) -> &Yaml {
        node_at(&self.doc, path)
    }

    fn str_at(&self, path: &str) -> &str {
        self.at(path).as_str().unwrap_or_else(|| {
            panic!(
                "{}: {path} must be a string, found {:?}",
                self.what(),
                self.at(path)
            )
        })
    }

    fn int_at(&self, path: &str) -> i64 {
        self.at(path).as_i64().unwrap_or_else(|| {
            panic!(
                "{}: {path} must be an integer, found {:?}",
                self.what(),
                self.at(path)
            )
        })
    }

    fn list_at(&self, path: &str) -> &[Yaml] {
        self.at(path).as_vec().unwrap_or_else(|| {
            panic!(
                "{}: {path} must be a list, found {:?}",
                self.what(),
                self.at(path)
            )
        })
    }

    /// A map of strings, such as labels or a selector's matchLabels.
    fn labels_at(&self, path: &str) -> BTreeMap<String, String> {
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
fn node_at<'a>(root: &'a Yaml, path: &str) -> &'a Yaml {
    path.split('.').fold(root, |node, segment| {
        match (node, segment.parse::<usize>()) {
            (Yaml::Array(_), Ok(index)) => &node[index],
            _ => &node[segment],
        }
    })
}

fn string_map(node: &Yaml) -> Option<BTreeMap<String, String>> {
    node.as_hash()?
        .iter()
        .map(|(key, value)| Some((key.as_str()?.to_owned(), value.as_str()?.to_owned())))
        .collect()
}

/// Every document of every `*.yaml` under deploy/k8s, each checked to be a named object.
fn manifests() -> Vec<Manifest> {
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
fn one<'a>(all: &'a [Manifest], kind: &str, filter: impl Fn(&Manifest) -> bool) -> &'a Manifest {
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

fn deployment(all: &[Manifest]) -> &Manifest {
    one(all, "Deployment", |_| true)
}

fn migrate_job(all: &[Manifest]) -> &Manifest {
    one(all, "Job", |_| true)
}

fn config_map(all: &[Manifest]) -> &Manifest {
    one(all, "ConfigMap", |_| true)
}

fn secret(all: &[Manifest]) -> &Manifest {
    one(all, "Secret", |_| true)
}

/// The Service in front of the pods (the others are ExternalName services).
fn service(all: &[Manifest]) -> &Manifest {
    one(all, "Service", |manifest| {
        manifest.at("spec.type").as_str() != Some("ExternalName")
    })
}

/// The ExternalName services: name → the manifest.
fn external_services(all: &[Manifest]) -> BTreeMap<String, &Manifest> {
    all.iter()
        .filter(|manifest| {
            manifest.kind() == "Service"
                && manifest.at("spec.type").as_str() == Some("ExternalName")
        })
        .map(|manifest| (manifest.name().to_owned(), manifest))
        .collect()
}

/// The only container of a pod template at `spec.template.spec`.
fn only_container(workload: &Manifest) -> &Yaml {
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
fn command_line(workload: &Manifest, container: &Yaml) -> Vec<String> {
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
fn config_map_data(all: &[Manifest]) -> BTreeMap<String, String> {
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
fn secret_example(all: &[Manifest]) -> BTreeMap<String, String> {
    let secret = secret(all);
    let data = secret.at("stringData");
    string_map(data).unwrap_or_else(|| {
        panic!(
            "{}: stringData must be a map of strings, found {data:?}",
            secret.what()
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Settings.

/// The values with every `REPLACE_…` placeholder replaced by a dummy secret: real-looking
/// (a 32-byte base64 key, as `message-service keygen` prints) and never a development one. The
/// same key name always gets the same dummy, so that two loads agree.
fn with_dummy_secrets(values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(key, value)| {
            let value = if !value.contains("REPLACE") {
                value.clone()
            } else if key.starts_with("CHAT__CRYPTO__KEYS__") || key == "CHAT__CRYPTO__DIGEST_KEY" {
                let mut bytes = [0x5a_u8; 32];
                for (index, byte) in key.bytes().enumerate() {
                    bytes[index % 32] ^= byte;
                }
                base64::engine::general_purpose::STANDARD.encode(bytes)
            } else if key == "CHAT__AUTH__JWT_SECRET" {
                "deploy-files-test-jwt-secret-never-used-anywhere-else".to_owned()
            } else {
                "deploy-files-test-dummy".to_owned()
            };
            (key.clone(), value)
        })
        .collect()
}

/// Every secret placeholder must say so: the example files never hold a real value.
fn assert_placeholders(what: &str, values: &BTreeMap<String, String>) {
    for key in SECRET_KEYS {
        let value = values
            .get(*key)
            .unwrap_or_else(|| panic!("{what}: the secret {key} is missing"));
        if *key == "CHAT__CRYPTO__ACTIVE_KEY_ID" {
            value
                .parse::<u16>()
                .unwrap_or_else(|_| panic!("{what}: {key}={value:?} is not a key id"));
        } else {
            assert!(
                value.contains("REPLACE"),
                "{what}: {key} must hold a REPLACE_… placeholder, never a real value"
            );
        }
    }
}

/// Loads the cluster profile from `<repo>/config` with exactly `variables` as the environment.
fn load_cluster(what: &str, variables: &BTreeMap<String, String>) -> Settings {
    let map: HashMap<String, String> = variables.clone().into_iter().collect();
    Settings::load_with(
        &repo().join("config"),
        Profile::Cluster,
        config::Environment::default().source(Some(map)),
    )
    .unwrap_or_else(|error| {
        panic!("{what}: does not load as the cluster profile's settings: {error}")
    })
}

/// What start-up checks beyond `Settings::load` (wiring.rs and the adapters), so that a value
/// that loads but would stop the service is caught here.
fn assert_startable(what: &str, settings: &Settings) {
    assert_eq!(settings.adapters.store, StoreAdapter::Cassandra, "{what}");
    assert_eq!(settings.adapters.cache, CacheAdapter::Redis, "{what}");
    assert_eq!(settings.adapters.fan_out, FanOutAdapter::Redis, "{what}");
    assert_eq!(settings.adapters.events, EventsAdapter::Kafka, "{what}");
    assert!(
        !settings.allow_development_secrets,
        "{what}: production must not allow the development secrets"
    );
    settings
        .redis
        .validate()
        .unwrap_or_else(|error| panic!("{what}: redis settings: {error}"));
    let cassandra = &settings.cassandra;
    cassandra
        .checked_keyspace()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    cassandra
        .replication_cql()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    cassandra
        .consistency_level()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    cassandra
        .serial_consistency_level()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    // Connects on first use only: this checks the settings, not Kafka.
    chat_kafka::KafkaPublisher::new(settings.kafka.clone())
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    chat_crypto::MessageCipher::from_config(&settings.crypto)
        .unwrap_or_else(|error| panic!("{what}: {error}"));
}

/// The dotted setting a `CHAT__SECTION__KEY` variable sets (the config crate lower-cases keys).
fn setting_of(variable: &str) -> Option<String> {
    let rest = variable.strip_prefix("CHAT__")?;
    Some(
        rest.split("__")
            .collect::<Vec<_>>()
            .join(".")
            .to_lowercase(),
    )
}

/// The dotted path of every setting in config/default.toml and config/cluster.toml.
fn settings_in_files() -> BTreeSet<String> {
    fn leaves(prefix: &str, table: config::Map<String, config::Value>, out: &mut BTreeSet<String>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            match value.kind {
                config::ValueKind::Table(table) => leaves(&path, table, out),
                _ => {
                    out.insert(path);
                }
            }
        }
    }
    let config_dir = repo().join("config");
    let table: config::Map<String, config::Value> = config::Config::builder()
        .add_source(config::File::from(config_dir.join("default.toml")))
        .add_source(config::File::from(config_dir.join("cluster.toml")))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap();
    let mut out = BTreeSet::new();
    leaves("", table, &mut out);
    out
}

/// Every variable is one the service reads: a setting of config/*.toml (or one with a serde
/// default), or one of the command line's. `Settings` ignores unknown keys, so a misspelt one
/// would otherwise be silently without effect.
fn assert_known_variables<'a>(what: &str, variables: impl IntoIterator<Item = &'a String>) {
    let known = settings_in_files();
    for variable in variables {
        if CLI_VARIABLES.contains(&variable.as_str()) {
            continue;
        }
        let setting = setting_of(variable).unwrap_or_else(|| {
            panic!("{what}: {variable} is neither CHAT__SECTION__KEY nor one of {CLI_VARIABLES:?}")
        });
        let in_map = MAP_SETTINGS.iter().any(|prefix| {
            setting
                .strip_prefix(prefix)
                .is_some_and(|key| !key.is_empty() && !key.contains('.'))
        });
        assert!(
            known.contains(&setting) || OPTIONAL_SETTINGS.contains(&setting.as_str()) || in_map,
            "{what}: {variable} sets {setting}, which is no setting of the service (see \
             config/default.toml and config/cluster.toml)"
        );
    }
}

/// A setting's loaded value, written as its environment variable would be.
fn loaded_value(settings: &Settings, setting: &str) -> String {
    let list = |items: &[String]| items.join(",");
    if let Some(datacenter) = setting.strip_prefix("cassandra.replication.datacenters.") {
        return settings
            .cassandra
            .replication
            .datacenters
            .get(datacenter)
            .map_or_else(String::new, u32::to_string);
    }
    if let Some(id) = setting.strip_prefix("crypto.keys.") {
        return settings
            .crypto
            .keys
            .get(id)
            .map_or_else(String::new, |key| key.expose_secret().to_owned());
    }
    match setting {
        "allow_development_secrets" => settings.allow_development_secrets.to_string(),
        "migrate_on_start" => settings.migrate_on_start.to_string(),
        "server.host" => settings.server.host.clone(),
        "server.port" => settings.server.port.to_string(),
        "server.workers" => settings.server.workers.to_string(),
        "server.shutdown_timeout_secs" => settings.server.shutdown_timeout_secs.to_string(),
        "server.instance_name" => settings.server.instance_name.clone(),
        "auth.jwt_secret" => settings.auth.jwt_secret.expose_secret().to_owned(),
        "auth.issuer" => settings.auth.issuer.clone(),
        "auth.audience" => settings.auth.audience.clone(),
        "crypto.active_key_id" => settings.crypto.active_key_id.to_string(),
        "crypto.digest_key" => settings.crypto.digest_key.expose_secret().to_owned(),
        "log.format" => match settings.log.format {
            LogFormat::Text => "text".to_owned(),
            LogFormat::Json => "json".to_owned(),
        },
        "log.filter" => settings.log.filter.clone(),
        "cassandra.contact_points" => list(&settings.cassandra.contact_points),
        "cassandra.keyspace" => settings.cassandra.keyspace.clone(),
        "cassandra.local_datacenter" => settings.cassandra.local_datacenter.clone(),
        "cassandra.consistency" => settings.cassandra.consistency.clone(),
        "cassandra.username" => settings.cassandra.username.clone(),
        "cassandra.password" => settings.cassandra.password.clone(),
        "cassandra.replication.class" => settings.cassandra.replication.class.clone(),
        "cassandra.replication.replication_factor" => settings
            .cassandra
            .replication
            .replication_factor
            .to_string(),
        "kafka.brokers" => list(&settings.kafka.brokers),
        "kafka.topic" => settings.kafka.topic.clone(),
        "kafka.partitions" => settings.kafka.partitions.to_string(),
        "kafka.replication_factor" => settings.kafka.replication_factor.to_string(),
        "redis.nodes" => list(&settings.redis.nodes),
        "redis.key_prefix" => settings.redis.key_prefix.clone(),
        "redis.username" => settings.redis.username.clone().unwrap_or_default(),
        "redis.password" => settings.redis.password.clone().unwrap_or_default(),
        other => panic!(
            "the deployment files set {other}, which this test cannot read back from Settings: \
             add it to loaded_value()"
        ),
    }
}

/// The loaded settings hold each variable's value: the variable reached the setting it names.
fn assert_reflected(what: &str, settings: &Settings, variables: &BTreeMap<String, String>) {
    for (variable, value) in variables {
        let Some(setting) = setting_of(variable) else {
            continue;
        };
        let loaded = loaded_value(settings, &setting);
        assert_eq!(
            &loaded, value,
            "{what}: {variable}={value:?} but the loaded settings have {setting} = {loaded:?}"
        );
    }
}

/// The cluster environment of the pods: ConfigMap, Secret (dummy values), and the container's
/// own `env` (which Kubernetes applies over `envFrom`).
fn pod_environment(all: &[Manifest]) -> BTreeMap<String, String> {
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

fn pod_settings(all: &[Manifest]) -> Settings {
    load_cluster(
        "deploy/k8s ConfigMap + Secret + Deployment env",
        &pod_environment(all),
    )
}

// ---------------------------------------------------------------------------------------------
// Kubernetes.

#[test]
fn every_manifest_is_a_named_object_of_the_deployment() {
    let all = manifests();
    let mut seen = BTreeSet::new();
    for manifest in &all {
        assert!(
            seen.insert((manifest.kind().to_owned(), manifest.name().to_owned())),
            "{}: another manifest has the same kind and name",
            manifest.what()
        );
        if manifest.kind() == "Kustomization" {
            continue;
        }
        let labels = manifest.labels_at("metadata.labels");
        assert_eq!(
            labels.get(NAME_LABEL.0).map(String::as_str),
            Some(NAME_LABEL.1),
            "{}: metadata.labels must have {}: {}",
            manifest.what(),
            NAME_LABEL.0,
            NAME_LABEL.1
        );
        if manifest.kind() == "Namespace" {
            assert_eq!(manifest.name(), NAMESPACE, "{}", manifest.what());
        } else {
            assert_eq!(
                manifest.at("metadata.namespace").as_str(),
                Some(NAMESPACE),
                "{}: metadata.namespace must be {NAMESPACE} (the ConfigMap's DNS names use it)",
                manifest.what()
            );
        }
    }
    for kind in [
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "Kustomization",
    ] {
        assert!(
            all.iter().any(|manifest| manifest.kind() == kind),
            "deploy/k8s has no {kind}"
        );
    }
}

#[test]
fn kustomization_lists_every_manifest_to_apply() {
    let all = manifests();
    let kustomization = one(&all, "Kustomization", |_| true);
    assert_eq!(kustomization.file, "kustomization.yaml");
    assert_eq!(
        kustomization.at("namespace").as_str(),
        Some(NAMESPACE),
        "{}: namespace",
        kustomization.what()
    );
    let listed: BTreeSet<String> = kustomization
        .list_at("resources")
        .iter()
        .map(|resource| {
            resource
                .as_str()
                .unwrap_or_else(|| panic!("{}: resources must be file names", kustomization.what()))
                .to_owned()
        })
        .collect();
    let files: BTreeSet<String> = all.iter().map(|manifest| manifest.file.clone()).collect();
    for file in &listed {
        assert!(
            files.contains(file),
            "kustomization.yaml lists {file}, which is not a manifest in deploy/k8s"
        );
    }
    for file in &files {
        if file == "kustomization.yaml" {
            continue;
        }
        if NOT_IN_KUSTOMIZATION.contains(&file.as_str()) {
            assert!(
                !listed.contains(file),
                "kustomization.yaml must not list {file} (see the comment at its top)"
            );
        } else {
            assert!(
                listed.contains(file),
                "kustomization.yaml does not list deploy/k8s/{file}"
            );
        }
    }
}

#[test]
fn probes_hit_health_endpoints_on_the_configured_port() {
    let all = manifests();
    let settings = pod_settings(&all);
    let deployment = deployment(&all);
    let container = only_container(deployment);
    let ports = container["ports"]
        .as_vec()
        .unwrap_or_else(|| panic!("{}: the container declares no ports", deployment.what()));
    let http = ports
        .iter()
        .find(|port| port["name"].as_str() == Some("http"))
        .unwrap_or_else(|| panic!("{}: no container port named http", deployment.what()));
    let container_port = http["containerPort"]
        .as_i64()
        .unwrap_or_else(|| panic!("{}: the http port has no containerPort", deployment.what()));
    assert_eq!(
        container_port,
        i64::from(settings.server.port),
        "{}: containerPort http must be the service's port (CHAT__SERVER__PORT in the ConfigMap)",
        deployment.what()
    );
    assert_eq!(
        config_map_data(&all)
            .get("CHAT__SERVER__PORT")
            .map(String::as_str),
        Some(container_port.to_string().as_str()),
        "the ConfigMap must state CHAT__SERVER__PORT, equal to the containerPort"
    );
    assert_eq!(
        settings.server.host, "0.0.0.0",
        "the pod must listen on every interface: the kubelet and the Service connect from outside"
    );
    // A probe's port is a number or a container port's name.
    let resolve = |port: &Yaml| -> i64 {
        match port {
            Yaml::Integer(number) => *number,
            Yaml::String(name) => ports
                .iter()
                .find(|candidate| candidate["name"].as_str() == Some(name))
                .and_then(|candidate| candidate["containerPort"].as_i64())
                .unwrap_or_else(|| {
                    panic!(
                        "{}: a probe names port {name:?}, which is no container port",
                        deployment.what()
                    )
                }),
            other => panic!("{}: a probe's port is {other:?}", deployment.what()),
        }
    };
    for (probe, path, required) in [
        ("readinessProbe", "/readyz", true),
        ("livenessProbe", "/healthz", true),
        ("startupProbe", "/healthz", false),
    ] {
        let node = &container[probe];
        if node.is_badvalue() && !required {
            continue;
        }
        assert_eq!(
            node["httpGet"]["path"].as_str(),
            Some(path),
            "{}: {probe} must GET {path}",
            deployment.what()
        );
        assert_eq!(
            resolve(&node["httpGet"]["port"]),
            container_port,
            "{}: {probe} must probe the http port",
            deployment.what()
        );
    }
    let readiness_timeout = container["readinessProbe"]["timeoutSeconds"]
        .as_i64()
        .unwrap_or(1);
    assert!(
        readiness_timeout > READYZ_STORE_WAIT_SECS,
        "{}: readinessProbe.timeoutSeconds is {readiness_timeout}, but /readyz may wait \
         {READYZ_STORE_WAIT_SECS} s for the store",
        deployment.what()
    );
    let annotations = deployment.labels_at("spec.template.metadata.annotations");
    if let Some(port) = annotations.get("prometheus.io/port") {
        assert_eq!(
            port,
            &container_port.to_string(),
            "{}: prometheus.io/port must be the container port",
            deployment.what()
        );
    }
}

#[test]
fn selectors_and_targets_match_the_deployments_pods() {
    let all = manifests();
    let deployment = deployment(&all);
    let pod_labels = deployment.labels_at("spec.template.metadata.labels");
    let selector = deployment.labels_at("spec.selector.matchLabels");
    let job_pod_labels = migrate_job(&all).labels_at("spec.template.metadata.labels");
    let selects = |selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>| {
        !selector.is_empty()
            && selector
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
    };
    assert!(
        selects(&selector, &pod_labels),
        "{}: spec.selector must select the pod template's labels",
        deployment.what()
    );
    assert_eq!(
        pod_labels.get(NAME_LABEL.0).map(String::as_str),
        Some(NAME_LABEL.1),
        "{}: pod labels",
        deployment.what()
    );

    let service = service(&all);
    let pdb = one(&all, "PodDisruptionBudget", |_| true);
    let spread = deployment
        .list_at("spec.template.spec.topologySpreadConstraints")
        .iter()
        .map(|constraint| {
            string_map(&constraint["labelSelector"]["matchLabels"]).unwrap_or_default()
        });
    let selectors = [
        (service.what(), service.labels_at("spec.selector")),
        (pdb.what(), pdb.labels_at("spec.selector.matchLabels")),
    ]
    .into_iter()
    .chain(spread.map(|labels| {
        (
            format!("{} topologySpreadConstraints", deployment.what()),
            labels,
        )
    }));
    for (what, selector) in selectors {
        assert!(
            selects(&selector, &pod_labels),
            "{what}: selector {selector:?} does not select the Deployment's pods {pod_labels:?}"
        );
        assert!(
            !selects(&selector, &job_pod_labels),
            "{what}: selector {selector:?} also selects the migrate Job's pods {job_pod_labels:?}"
        );
    }

    // The Service: port 80 to the container's http port.
    let service_ports = service.list_at("spec.ports");
    assert!(
        service_ports.iter().any(|port| {
            port["port"].as_i64() == Some(80)
                && (port["targetPort"].as_str() == Some("http")
                    || port["targetPort"].as_i64()
                        == only_container(deployment)["ports"][0]["containerPort"].as_i64())
        }),
        "{}: needs port 80 with targetPort http",
        service.what()
    );
    assert_eq!(
        service.at("spec.type").as_str().unwrap_or("ClusterIP"),
        "ClusterIP"
    );

    // The HPA scales this Deployment and owns its replica count.
    let hpa = one(&all, "HorizontalPodAutoscaler", |_| true);
    assert_eq!(hpa.str_at("apiVersion"), "autoscaling/v2", "{}", hpa.what());
    assert_eq!(
        hpa.str_at("spec.scaleTargetRef.apiVersion"),
        "apps/v1",
        "{}",
        hpa.what()
    );
    assert_eq!(
        hpa.str_at("spec.scaleTargetRef.kind"),
        "Deployment",
        "{}",
        hpa.what()
    );
    assert_eq!(
        hpa.str_at("spec.scaleTargetRef.name"),
        deployment.name(),
        "{}: scaleTargetRef must name the Deployment",
        hpa.what()
    );
    let min = hpa.int_at("spec.minReplicas");
    let max = hpa.int_at("spec.maxReplicas");
    assert!(
        min >= 2,
        "{}: minReplicas {min}: one pod must serve while another drains",
        hpa.what()
    );
    assert!(
        max > min,
        "{}: maxReplicas {max} <= minReplicas {min}",
        hpa.what()
    );
    assert!(
        deployment.at("spec.replicas").is_badvalue(),
        "{}: spec.replicas must be left out while {} scales it, or every kubectl apply resets the \
         pod count (and drops the extra pods' sockets)",
        deployment.what(),
        hpa.what()
    );
    assert!(
        hpa.list_at("spec.metrics").iter().any(|metric| {
            metric["type"].as_str() == Some("Resource")
                && metric["resource"]["name"].as_str() == Some("cpu")
        }),
        "{}: must scale on CPU",
        hpa.what()
    );
    let scale_down = hpa.int_at("spec.behavior.scaleDown.stabilizationWindowSeconds");
    assert!(
        scale_down >= 300,
        "{}: scaleDown.stabilizationWindowSeconds {scale_down}: scaling down drops sockets, so \
         it must not follow every dip",
        hpa.what()
    );

    // The PDB leaves pods to serve.
    assert_eq!(pdb.str_at("apiVersion"), "policy/v1", "{}", pdb.what());
    match (
        pdb.at("spec.maxUnavailable").as_i64(),
        pdb.at("spec.minAvailable").as_i64(),
    ) {
        (Some(max_unavailable), None) => assert!(
            (1..min).contains(&max_unavailable),
            "{}: maxUnavailable {max_unavailable} must leave a pod of minReplicas {min} serving",
            pdb.what()
        ),
        (None, Some(min_available)) => assert!(
            (1..min).contains(&min_available),
            "{}: minAvailable {min_available} must be below minReplicas {min}, or no drain can \
             evict anything",
            pdb.what()
        ),
        other => panic!(
            "{}: set exactly one of maxUnavailable, minAvailable (as numbers), found {other:?}",
            pdb.what()
        ),
    }
}

#[test]
fn workloads_read_the_configmap_and_secret_and_run_the_cluster_profile() {
    let all = manifests();
    let config_map = config_map(&all);
    let secret = secret(&all);
    let deployment = deployment(&all);
    let job = migrate_job(&all);
    for (workload, subcommand) in [(deployment, "serve"), (job, "migrate")] {
        let container = only_container(workload);
        let env_from = container["envFrom"]
            .as_vec()
            .unwrap_or_else(|| panic!("{}: the container has no envFrom", workload.what()));
        let refs = |kind: &str| -> Vec<&str> {
            env_from
                .iter()
                .filter_map(|source| source[kind]["name"].as_str())
                .collect()
        };
        assert_eq!(
            refs("configMapRef"),
            [config_map.name()],
            "{}: envFrom must name the ConfigMap {}",
            workload.what(),
            config_map.what()
        );
        assert_eq!(
            refs("secretRef"),
            [secret.name()],
            "{}: envFrom must name the Secret {}",
            workload.what(),
            secret.what()
        );
        for source in env_from {
            for kind in ["configMapRef", "secretRef"] {
                assert!(
                    source[kind]["optional"].as_bool() != Some(true),
                    "{}: {kind} must not be optional: a pod without its settings must not start",
                    workload.what()
                );
            }
        }
        let command = command_line(workload, container);
        assert!(
            command
                .first()
                .is_some_and(|program| program.ends_with("message-service")),
            "{}: the command must run message-service, found {command:?}",
            workload.what()
        );
        assert!(
            command
                .windows(2)
                .any(|pair| pair[0] == "--profile" && pair[1] == "cluster"),
            "{}: the command must pass --profile cluster, found {command:?}",
            workload.what()
        );
        assert_eq!(
            command.last().map(String::as_str),
            Some(subcommand),
            "{}: the command must end with {subcommand}",
            workload.what()
        );
        // Kubernetes checks these only on the node, at start.
        let context = &container["securityContext"];
        let pod_context = &workload.at("spec.template.spec.securityContext");
        assert_eq!(
            context["readOnlyRootFilesystem"].as_bool(),
            Some(true),
            "{}: readOnlyRootFilesystem",
            workload.what()
        );
        assert_eq!(
            context["allowPrivilegeEscalation"].as_bool(),
            Some(false),
            "{}: allowPrivilegeEscalation",
            workload.what()
        );
        assert!(
            context["runAsNonRoot"].as_bool() == Some(true)
                || pod_context["runAsNonRoot"].as_bool() == Some(true),
            "{}: runAsNonRoot",
            workload.what()
        );
        for bound in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    !container["resources"][bound][resource].is_badvalue(),
                    "{}: resources.{bound}.{resource} is missing",
                    workload.what()
                );
            }
        }
    }
    assert_eq!(
        only_container(job)["image"].as_str(),
        only_container(deployment)["image"].as_str(),
        "{}: must run the Deployment's image (the same migrations as the code)",
        job.what()
    );
    assert!(
        matches!(
            job.str_at("spec.template.spec.restartPolicy"),
            "Never" | "OnFailure"
        ),
        "{}: restartPolicy",
        job.what()
    );
    assert_eq!(
        config_map_data(&all)
            .get("CHAT_PROFILE")
            .map(String::as_str),
        Some("cluster"),
        "{}: CHAT_PROFILE must be cluster",
        config_map.what()
    );
}

#[test]
fn the_grace_period_covers_the_pre_stop_sleep_and_the_drain() {
    let all = manifests();
    let settings = pod_settings(&all);
    let deployment = deployment(&all);
    let container = only_container(deployment);
    let pre_stop = &container["lifecycle"]["preStop"];
    let sleep = pre_stop["sleep"]["seconds"].as_i64().or_else(|| {
        // exec: ["sleep", "N"] on clusters without the sleep action.
        match pre_stop["exec"]["command"].as_vec()?.as_slice() {
            [program, seconds] if program.as_str()?.ends_with("sleep") => {
                seconds.as_str()?.parse().ok()
            }
            _ => None,
        }
    });
    let sleep = sleep.unwrap_or_else(|| {
        panic!(
            "{}: lifecycle.preStop must sleep (sleep.seconds or exec sleep N) so endpoints are \
             removed before SIGTERM closes the sockets",
            deployment.what()
        )
    });
    assert!(
        (1..=30).contains(&sleep),
        "{}: a preStop sleep of {sleep} s",
        deployment.what()
    );
    let grace = deployment.int_at("spec.template.spec.terminationGracePeriodSeconds");
    let shutdown = i64::try_from(settings.server.shutdown_timeout_secs).unwrap();
    assert!(
        grace > shutdown,
        "{}: terminationGracePeriodSeconds {grace} <= server.shutdown_timeout_secs {shutdown}",
        deployment.what()
    );
    // The grace period also runs during preStop, and after SIGTERM the sockets may take the
    // shutdown timeout to close and actix's graceful stop as long again.
    let needed = sleep + 2 * shutdown;
    assert!(
        grace > needed,
        "{}: terminationGracePeriodSeconds {grace} must exceed preStop {sleep} s + 2 x \
         server.shutdown_timeout_secs {shutdown} s = {needed} s, or the kubelet kills pods \
         mid-drain",
        deployment.what()
    );
}

#[test]
fn configmap_and_secret_load_as_cluster_settings() {
    let all = manifests();
    let config_map = config_map(&all);
    let data = config_map_data(&all);
    let placeholders = secret_example(&all);
    assert_placeholders(&secret(&all).what(), &placeholders);
    for key in placeholders.keys() {
        assert!(
            !data.contains_key(key),
            "{}: {key} is a secret; keep it in the Secret only",
            config_map.what()
        );
    }
    let variables = pod_environment(&all);
    assert_known_variables(
        "deploy/k8s ConfigMap, Secret and Deployment env",
        variables.keys(),
    );
    let settings = pod_settings(&all);
    assert_startable("deploy/k8s ConfigMap + Secret", &settings);
    assert_reflected("deploy/k8s ConfigMap + Secret", &settings, &variables);
    assert_eq!(
        settings.log.format,
        LogFormat::Json,
        "{}: logs for a pipeline",
        config_map.what()
    );
    assert_eq!(settings.server.port, 8080);

    // Applied as it is, the example must not start a service.
    let mut raw = config_map_data(&all);
    raw.extend(placeholders);
    let map: HashMap<String, String> = raw.into_iter().collect();
    let refused = Settings::load_with(
        &repo().join("config"),
        Profile::Cluster,
        config::Environment::default().source(Some(map)),
    )
    .map_or(true, |settings| {
        chat_crypto::MessageCipher::from_config(&settings.crypto).is_err()
    });
    assert!(
        refused,
        "{}: its placeholders would start a service; they must be refused",
        secret(&all).what()
    );
}

#[test]
fn backing_services_are_reached_through_the_external_name_services() {
    let all = manifests();
    let externals = external_services(&all);
    for service in externals.values() {
        let target = service.str_at("spec.externalName");
        assert!(
            !target.is_empty() && !target.contains(".svc"),
            "{}: externalName {target:?} must be the external host",
            service.what()
        );
    }
    let settings = pod_settings(&all);
    for (setting, addresses, name) in [
        (
            "cassandra.contact_points",
            &settings.cassandra.contact_points,
            "cassandra",
        ),
        ("kafka.brokers", &settings.kafka.brokers, "kafka"),
        ("redis.nodes", &settings.redis.nodes, "redis"),
    ] {
        let service = externals.get(name).unwrap_or_else(|| {
            panic!("deploy/k8s has no ExternalName Service named {name} for {setting}")
        });
        let ports: Vec<i64> = service
            .list_at("spec.ports")
            .iter()
            .filter_map(|port| port["port"].as_i64())
            .collect();
        let namespace = service.str_at("metadata.namespace");
        let names = [
            name.to_owned(),
            format!("{name}.{namespace}"),
            format!("{name}.{namespace}.svc"),
            format!("{name}.{namespace}.svc.cluster.local"),
        ];
        assert!(!addresses.is_empty(), "{setting} is empty");
        for address in addresses {
            let (host, port) = address
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("{setting}: {address:?} is not host:port"));
            assert!(
                names.iter().any(|candidate| candidate == host),
                "{setting}: {host} is not the ExternalName service {} ({})",
                names[2],
                service.what()
            );
            let port: i64 = port
                .parse()
                .unwrap_or_else(|_| panic!("{setting}: {address:?} has no numeric port"));
            assert!(
                ports.contains(&port),
                "{setting}: port {port} is not among {}'s ports {ports:?} (a CNAME keeps the \
                 port: it must be the external server's)",
                service.what()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// systemd.

/// A unit file: section → its `Key=Value` assignments in order (keys repeat, e.g.
/// `Environment=`).
struct Unit {
    path: String,
    sections: BTreeMap<String, Vec<(String, String)>>,
}

impl Unit {
    fn parse(path: &Path) -> Self {
        let text = read(path);
        let shown = path.display().to_string();
        let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let mut current: Option<String> = None;
        let mut pending = String::new();
        for (number, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if pending.is_empty()
                && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
            {
                continue;
            }
            // A trailing backslash continues the value on the next line.
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            let line = format!("{pending}{line}");
            pending.clear();
            if let Some(name) = line
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
            {
                current = Some(name.to_owned());
                sections.entry(name.to_owned()).or_default();
                continue;
            }
            let section = current.clone().unwrap_or_else(|| {
                panic!("{shown}:{}: an assignment before any [Section]", number + 1)
            });
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{shown}:{}: not Key=Value: {line:?}", number + 1));
            sections
                .entry(section)
                .or_default()
                .push((key.trim().to_owned(), value.trim().to_owned()));
        }
        assert!(pending.is_empty(), "{shown}: ends in a continuation line");
        Self {
            path: shown,
            sections,
        }
    }

    fn values(&self, section: &str, key: &str) -> Vec<&str> {
        self.sections
            .get(section)
            .unwrap_or_else(|| panic!("{}: no [{section}] section", self.path))
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The one value of `key`.
    fn value(&self, section: &str, key: &str) -> &str {
        match self.values(section, key).as_slice() {
            [value] => value,
            [] => panic!("{}: [{section}] has no {key}=", self.path),
            many => panic!(
                "{}: [{section}] sets {key}= {} times",
                self.path,
                many.len()
            ),
        }
    }

    /// `Environment=` assignments with the instance and host specifiers expanded.
    fn environment(&self) -> BTreeMap<String, String> {
        let mut variables = BTreeMap::new();
        for assignments in self.values("Service", "Environment") {
            for assignment in assignments.split_whitespace() {
                assert!(
                    !assignment.contains('"'),
                    "{}: the test reads unquoted Environment= only: {assignment}",
                    self.path
                );
                let (name, value) = assignment.split_once('=').unwrap_or_else(|| {
                    panic!("{}: Environment={assignment} is not VAR=value", self.path)
                });
                variables.insert(name.to_owned(), expand_specifiers(&self.path, value));
            }
        }
        variables
    }
}

/// systemd's `%i` (the instance: the port) and `%H` (the host name); any other specifier is
/// not expected in this unit.
fn expand_specifiers(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('i') => out.push_str(UNIT_INSTANCE),
            Some('H') => out.push_str("chat-host-1"),
            Some('%') => out.push('%'),
            other => {
                panic!("{path}: the test does not expand the specifier %{other:?} in {value:?}")
            }
        }
    }
    out
}

/// `KEY=VALUE` lines of an environment file.
fn env_file(path: &Path) -> BTreeMap<String, String> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: not KEY=VALUE: {line:?}", path.display()));
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect()
}

/// Seconds of a systemd time span such as `35s`, `35`, `1min 30s`.
fn seconds_of(path: &str, span: &str) -> u64 {
    span.split_whitespace()
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            let number: u64 = digits
                .parse()
                .unwrap_or_else(|_| panic!("{path}: cannot read the time span {span:?}"));
            match &part[digits.len()..] {
                "" | "s" | "sec" => number,
                "min" | "m" => number * 60,
                unit => panic!("{path}: the test does not read the unit {unit:?} in {span:?}"),
            }
        })
        .sum()
}

#[test]
fn the_systemd_unit_runs_the_cluster_profile_and_drains_before_it_is_killed() {
    let dir = repo().join("deploy/systemd");
    let unit = Unit::parse(&dir.join("message-service@.service"));
    let path = unit.path.clone();

    let exec: Vec<&str> = unit
        .value("Service", "ExecStart")
        .split_whitespace()
        .collect();
    assert!(
        exec.first().is_some_and(
            |program| program.starts_with('/') && program.ends_with("/message-service")
        ),
        "{path}: ExecStart must run message-service by absolute path, found {exec:?}"
    );
    assert!(
        exec.windows(2).any(|pair| pair == ["--profile", "cluster"]),
        "{path}: ExecStart must pass --profile cluster, found {exec:?}"
    );
    assert_eq!(
        exec.last(),
        Some(&"serve"),
        "{path}: ExecStart must end with serve"
    );
    assert_eq!(
        unit.value("Service", "KillSignal"),
        "SIGTERM",
        "{path}: the graceful signal"
    );
    assert_eq!(unit.value("Service", "Restart"), "on-failure", "{path}");
    let nofile: u64 = unit
        .value("Service", "LimitNOFILE")
        .parse()
        .unwrap_or_else(|_| panic!("{path}: LimitNOFILE must be a number"));
    assert!(
        nofile >= 65_536,
        "{path}: LimitNOFILE {nofile}: each WebSocket holds a descriptor"
    );
    assert!(
        unit.values("Service", "DynamicUser") == ["yes"]
            || !unit.values("Service", "User").is_empty(),
        "{path}: must not run as root (DynamicUser=yes or User=)"
    );
    assert_eq!(unit.value("Service", "NoNewPrivileges"), "yes", "{path}");
    assert_eq!(unit.value("Service", "ProtectSystem"), "strict", "{path}");
    assert_eq!(
        unit.value("Install", "WantedBy"),
        "multi-user.target",
        "{path}"
    );

    let unit_env = unit.environment();
    assert_eq!(
        unit_env.get("CHAT__SERVER__PORT").map(String::as_str),
        Some(UNIT_INSTANCE),
        "{path}: Environment=CHAT__SERVER__PORT=%i (the instance is the port)"
    );
    let env_path = unit.value("Service", "EnvironmentFile");
    let config_dir = unit_env
        .get("CHAT_CONFIG_DIR")
        .unwrap_or_else(|| panic!("{path}: Environment=CHAT_CONFIG_DIR is missing"));
    assert_eq!(
        config_dir, "/etc/chat-message-service",
        "{path}: CHAT_CONFIG_DIR"
    );
    assert_eq!(
        env_path,
        format!("{config_dir}/env"),
        "{path}: EnvironmentFile must be the env file in the config folder (no leading -: a \
         missing file must stop the start)"
    );

    let example_path = dir.join("env.example");
    let example = env_file(&example_path);
    let example_what = example_path.display().to_string();
    assert!(
        !example.contains_key("CHAT__SERVER__PORT"),
        "{example_what}: must not set CHAT__SERVER__PORT: EnvironmentFile= overrides \
         Environment=, so every instance would bind the same port"
    );
    assert_placeholders(&example_what, &example);

    let mut variables = unit_env.clone();
    variables.extend(with_dummy_secrets(&example));
    let what = format!("{path} with {example_what}");
    assert_known_variables(&what, variables.keys());
    let settings = load_cluster(&what, &variables);
    assert_startable(&what, &settings);
    assert_reflected(&what, &settings, &variables);
    assert_eq!(settings.server.port.to_string(), UNIT_INSTANCE);

    let stop = seconds_of(&path, unit.value("Service", "TimeoutStopSec"));
    let shutdown = settings.server.shutdown_timeout_secs;
    assert!(
        stop > shutdown,
        "{path}: TimeoutStopSec {stop} s <= server.shutdown_timeout_secs {shutdown} s"
    );
    // As for the pods: the sockets may take the shutdown timeout and actix's stop as long again.
    assert!(
        stop > 2 * shutdown,
        "{path}: TimeoutStopSec {stop} s must exceed 2 x server.shutdown_timeout_secs \
         ({shutdown} s), or systemd kills instances mid-drain"
    );
}

#[test]
fn docs_deploy_md_names_every_deployment_file() {
    let doc = read(&repo().join("docs/deploy.md"));
    for dir in ["deploy/k8s", "deploy/systemd"] {
        for entry in fs::read_dir(repo().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                doc.contains(&name),
                "docs/deploy.md does not mention {dir}/{name}"
            );
        }
    }
}
