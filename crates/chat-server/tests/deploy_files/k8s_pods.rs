//! The pods: probes, the command and environment they run with, and their grace period.

use yaml_rust2::Yaml;

use crate::support::k8s::{
    READYZ_STORE_WAIT_SECS, command_line, config_map, config_map_data, deployment, manifests,
    migrate_job, only_container, pod_settings, secret,
};

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
