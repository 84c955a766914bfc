//! The subcommands other than `serve`, and a start-up that must fail clearly.

use base64::Engine as _;

use crate::support::{command, free_port, run, subcommand, workspace};

#[test]
fn keygen_prints_a_32_byte_base64_key() {
    let (work, data) = workspace();
    let finished = subcommand(work.path(), &data, &[], &["keygen"]);
    finished.assert_success("keygen");
    let key = base64::engine::general_purpose::STANDARD
        .decode(finished.stdout.trim())
        .unwrap();
    assert_eq!(key.len(), 32);
}

#[test]
fn token_rejects_a_user_that_is_not_a_uuid() {
    let (work, data) = workspace();
    let finished = subcommand(work.path(), &data, &[], &["token", "--user", "alice"]);
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
    let finished = subcommand(work.path(), &data, &[], &["migrate"]);
    finished.assert_success("migrate");
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
