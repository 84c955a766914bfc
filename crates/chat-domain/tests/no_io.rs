//! The domain stays free of I/O: its normal dependencies are an allow-list of pure crates, so
//! a driver, a runtime or a file format cannot creep in unnoticed.

#[test]
fn the_domain_depends_only_on_pure_crates() {
    const PURE: [&str; 7] = [
        "async-trait",
        "base64",
        "serde",
        "thiserror",
        "time",
        "tracing",
        "uuid",
    ];
    let manifest = include_str!("../Cargo.toml");
    let mut section = "";
    let mut dependencies = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[dependencies]" && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap_or_default().trim();
            dependencies.push(name.to_owned());
        }
    }
    assert!(
        !dependencies.is_empty(),
        "no [dependencies] found in:\n{manifest}"
    );
    let impure: Vec<_> = dependencies
        .iter()
        .filter(|name| !PURE.contains(&name.as_str()))
        .collect();
    assert!(
        impure.is_empty(),
        "chat-domain depends on {impure:?}: the domain does no I/O (ports are traits; adapters \
         live in their own crates). If the crate is pure, add it to the allow-list."
    );
}
