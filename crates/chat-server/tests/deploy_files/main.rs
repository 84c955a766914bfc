//! The deployment files, checked against each other and against the real settings: the
//! Kubernetes manifests under `deploy/k8s` and the systemd unit under `deploy/systemd`. There is
//! no cluster or systemd here to apply them to, so a mismatch (a probe on the wrong port, a
//! selector that misses the pods, a setting the service does not know, a grace period shorter
//! than the drain) would otherwise first show up as a failed rollout. Every manifest must parse;
//! the ConfigMap plus the Secret's keys, and the unit's environment plus its environment file,
//! must load as the cluster profile's `Settings` and pass the same checks the service makes at
//! start-up. No network.
//!
//! One module a subject; the harness is in `support`.

#![allow(clippy::unwrap_used)]

mod docs;
mod k8s_objects;
mod k8s_pods;
mod k8s_settings;
mod support;
mod systemd;
