//! The manifests are objects of one deployment: named, labelled, in the namespace, listed by the
//! kustomization, and wired to each other by selectors and names.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::k8s::{
    NAME_LABEL, NAMESPACE, NOT_IN_KUSTOMIZATION, deployment, manifests, migrate_job, one,
    only_container, service, string_map,
};

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
