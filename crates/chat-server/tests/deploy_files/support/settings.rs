//! Loading a deployment's environment as the cluster profile's `Settings`, and the checks the
//! service makes at start-up.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine as _;
use chat_server::settings::{
    CacheAdapter, EventsAdapter, FanOutAdapter, LogFormat, Profile, Settings, StoreAdapter,
};
use secrecy::ExposeSecret as _;

use super::repo;

/// The secrets every deployment sets (the cluster profile refuses the development ones).
pub const SECRET_KEYS: &[&str] = &[
    "CHAT__AUTH__JWT_SECRET",
    "CHAT__CRYPTO__ACTIVE_KEY_ID",
    "CHAT__CRYPTO__KEYS__1",
    "CHAT__CRYPTO__DIGEST_KEY",
];
/// Variables the command line reads (`cli.rs`), not `Settings`.
pub const CLI_VARIABLES: &[&str] = &["CHAT_PROFILE", "CHAT_CONFIG_DIR"];
/// Settings with a serde default but no line in `config/*.toml`.
pub const OPTIONAL_SETTINGS: &[&str] = &[
    "cassandra.username",
    "cassandra.password",
    "redis.username",
    "redis.password",
    "kafka.client_id",
];
/// Map settings: any key below these prefixes is valid.
pub const MAP_SETTINGS: &[&str] = &["cassandra.replication.datacenters.", "crypto.keys."];

/// The values with every `REPLACE_…` placeholder replaced by a dummy secret: real-looking
/// (a 32-byte base64 key, as `message-service keygen` prints) and never a development one. The
/// same key name always gets the same dummy, so that two loads agree.
pub fn with_dummy_secrets(values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
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
pub fn assert_placeholders(what: &str, values: &BTreeMap<String, String>) {
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
pub fn load_cluster(what: &str, variables: &BTreeMap<String, String>) -> Settings {
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
pub fn assert_startable(what: &str, settings: &Settings) {
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
    valid(what, cassandra.checked_keyspace());
    valid(what, cassandra.replication_cql());
    valid(what, cassandra.consistency_level());
    valid(what, cassandra.serial_consistency_level());
    // Connects on first use only: this checks the settings, not Kafka.
    valid(
        what,
        chat_kafka::KafkaPublisher::new(settings.kafka.clone()),
    );
    valid(
        what,
        chat_crypto::MessageCipher::from_config(&settings.crypto),
    );
}

/// Fails the test with `what` and the error when `checked` is one.
fn valid<T, E: std::fmt::Display>(what: &str, checked: Result<T, E>) {
    if let Err(error) = checked {
        panic!("{what}: {error}");
    }
}

/// The dotted setting a `CHAT__SECTION__KEY` variable sets (the config crate lower-cases keys).
pub fn setting_of(variable: &str) -> Option<String> {
    let rest = variable.strip_prefix("CHAT__")?;
    Some(
        rest.split("__")
            .collect::<Vec<_>>()
            .join(".")
            .to_lowercase(),
    )
}

/// The dotted path of every setting in config/default.toml and config/cluster.toml.
pub fn settings_in_files() -> BTreeSet<String> {
    pub fn leaves(
        prefix: &str,
        table: config::Map<String, config::Value>,
        out: &mut BTreeSet<String>,
    ) {
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
pub fn assert_known_variables<'a>(what: &str, variables: impl IntoIterator<Item = &'a String>) {
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
pub fn loaded_value(settings: &Settings, setting: &str) -> String {
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
pub fn assert_reflected(what: &str, settings: &Settings, variables: &BTreeMap<String, String>) {
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
