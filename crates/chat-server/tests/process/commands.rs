//! The subcommands other than `serve`, and a start-up that must fail clearly.

use base64::Engine as _;

use crate::support::{command, free_port, run, workspace};

#[test]
fn keygen_prints_a_32_byte_base64_key() {
    let (work, data) = workspace();
    let mut command = command(work.path(), &data, 0);
    command.arg("keygen");
    let finished = run("message-service keygen", command);
    assert!(finished.status.success(), "keygen: {}", finished.stderr);
    let key = base64::engine::general_purpose::STANDARD
        .decode(finished.stdout.trim())
        .unwrap();
    assert_eq!(key.len(), 32);
}

#[test]
fn token_rejects_a_user_that_is_not_a_uuid() {
    let (work, data) = workspace();
    let mut command = command(work.path(), &data, 0);
    command.args(["token", "--user", "alice"]);
    let finished = run("message-service token", command);
    assert!(!finished.status.success(), "token accepted a non-UUID user");
    assert!(
        finished.stderr.contains("--user"),
        "stderr does not name --user:\n{}",
        finished.stderr
    );
    assert!(
        finished.stdout.trim().is_empty(),
        "stdout: {}",
        finished.stdout
    );
}

#[test]
fn migrate_creates_the_database() {
    let (work, data) = workspace();
    let mut command = command(work.path(), &data, 0);
    command.arg("migrate");
    let finished = run("message-service migrate", command);
    assert!(
        finished.status.success(),
        "migrate failed ({}): {}",
        finished.status,
        finished.stderr
    );
    assert!(data.join("chat.redb").is_file(), "no chat.redb in {data:?}");
}

#[test]
fn an_unknown_profile_is_a_clear_error() {
    let (work, data) = workspace();
    let mut command = command(work.path(), &data, free_port());
    command.env("CHAT_PROFILE", "nope");
    let finished = run("message-service with CHAT_PROFILE=nope", command);
    assert!(
        !finished.status.success(),
        "an unknown profile was accepted"
    );
    assert!(
        finished.stderr.contains("nope") && finished.stderr.contains("profile"),
        "stderr does not name the profile:\n{}",
        finished.stderr
    );
}
