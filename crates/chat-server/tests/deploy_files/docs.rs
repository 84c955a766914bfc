//! The documentation of the deployment files.

use std::fs;

use crate::support::{read, repo};

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
