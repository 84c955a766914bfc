//! The systemd unit.

use crate::support::repo;
use crate::support::settings::{
    assert_known_variables, assert_placeholders, assert_reflected, assert_startable, load_cluster,
    with_dummy_secrets,
};
use crate::support::systemd::{UNIT_INSTANCE, Unit, env_file, seconds_of};

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
