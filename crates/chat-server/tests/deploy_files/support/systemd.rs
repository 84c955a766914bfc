//! The systemd unit under `deploy/systemd`, parsed.

use std::collections::BTreeMap;
use std::path::Path;

use super::read;

/// The instance the systemd unit is checked as.
pub const UNIT_INSTANCE: &str = "8181";

/// A unit file: section → its `Key=Value` assignments in order (keys repeat, e.g.
/// `Environment=`).
pub struct Unit {
    pub path: String,
    sections: BTreeMap<String, Vec<(String, String)>>,
}

impl Unit {
    pub fn parse(path: &Path) -> Self {
        let text = read(path);
        let shown = path.display().to_string();
        let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let mut current: Option<String> = None;
        let mut pending = String::new();
        for (number, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if pending.is_empty()
                && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
            {
                continue;
            }
            // A trailing backslash continues the value on the next line.
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            let line = format!("{pending}{line}");
            pending.clear();
            if let Some(name) = line
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
            {
                current = Some(name.to_owned());
                sections.entry(name.to_owned()).or_default();
                continue;
            }
            let section = current.clone().unwrap_or_else(|| {
                panic!("{shown}:{}: an assignment before any [Section]", number + 1)
            });
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{shown}:{}: not Key=Value: {line:?}", number + 1));
            sections
                .entry(section)
                .or_default()
                .push((key.trim().to_owned(), value.trim().to_owned()));
        }
        assert!(pending.is_empty(), "{shown}: ends in a continuation line");
        Self {
            path: shown,
            sections,
        }
    }

    pub fn values(&self, section: &str, key: &str) -> Vec<&str> {
        self.sections
            .get(section)
            .unwrap_or_else(|| panic!("{}: no [{section}] section", self.path))
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The one value of `key`.
    pub fn value(&self, section: &str, key: &str) -> &str {
        match self.values(section, key).as_slice() {
            [value] => value,
            [] => panic!("{}: [{section}] has no {key}=", self.path),
            many => panic!(
                "{}: [{section}] sets {key}= {} times",
                self.path,
                many.len()
            ),
        }
    }

    /// `Environment=` assignments with the instance and host specifiers expanded.
    pub fn environment(&self) -> BTreeMap<String, String> {
        let mut variables = BTreeMap::new();
        for assignments in self.values("Service", "Environment") {
            for assignment in assignments.split_whitespace() {
                assert!(
                    !assignment.contains('"'),
                    "{}: the test reads unquoted Environment= only: {assignment}",
                    self.path
                );
                let (name, value) = assignment.split_once('=').unwrap_or_else(|| {
                    panic!("{}: Environment={assignment} is not VAR=value", self.path)
                });
                variables.insert(name.to_owned(), expand_specifiers(&self.path, value));
            }
        }
        variables
    }
}

/// systemd's `%i` (the instance: the port) and `%H` (the host name); any other specifier is
/// not expected in this unit.
pub fn expand_specifiers(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('i') => out.push_str(UNIT_INSTANCE),
            Some('H') => out.push_str("chat-host-1"),
            Some('%') => out.push('%'),
            other => {
                panic!("{path}: the test does not expand the specifier %{other:?} in {value:?}")
            }
        }
    }
    out
}

/// `KEY=VALUE` lines of an environment file.
pub fn env_file(path: &Path) -> BTreeMap<String, String> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: not KEY=VALUE: {line:?}", path.display()));
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect()
}

/// Seconds of a systemd time span such as `35s`, `35`, `1min 30s`.
pub fn seconds_of(path: &str, span: &str) -> u64 {
    span.split_whitespace()
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            let number: u64 = digits
                .parse()
                .unwrap_or_else(|_| panic!("{path}: cannot read the time span {span:?}"));
            match &part[digits.len()..] {
                "" | "s" | "sec" => number,
                "min" | "m" => number * 60,
                unit => panic!("{path}: the test does not read the unit {unit:?} in {span:?}"),
            }
        })
        .sum()
}
