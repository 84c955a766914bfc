//! The ConfigMap and Secret as the service's settings, and the backing services they name.

use std::collections::HashMap;

use chat_server::settings::{LogFormat, Profile, Settings};

use crate::support::k8s::{
    config_map, config_map_data, external_services, manifests, pod_environment, pod_settings,
    secret, secret_example,
};
use crate::support::repo;
use crate::support::settings::{
    assert_known_variables, assert_placeholders, assert_reflected, assert_startable,
};

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
