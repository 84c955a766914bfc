//! The harness: where the repository is, and reading its files; the settings checks
//! ([`settings`]), the Kubernetes manifests ([`k8s`]) and the systemd unit ([`systemd`]).

use std::fs;
use std::path::{Path, PathBuf};

pub mod k8s;
pub mod settings;
pub mod systemd;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}
