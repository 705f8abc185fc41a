//! docs/jail.md against the seccomp policies, so the doc cannot drift from
//! them: every role of `seccomp-policies/roles.json` has one section in the
//! doc, and that section's table lists exactly the role's rules on both
//! arches.
//!
//! How the doc is read:
//! - A role's section starts at a heading "Seccomp policy `ROLE`" (any
//!   level) and ends at the next heading; fenced code blocks are skipped.
//! - In a section, each table row (a line starting with `|`, the header
//!   and separator rows aside) is one rule, with four cells:
//!   `| syscall | only with | arch | why |`.
//! - syscall: the name in backticks. This is how a syscall is recognised;
//!   a row whose first cell is not a backticked name is an error.
//! - only with: the comments of the rule's argument conditions joined by
//!   "; " (an ioctl's request name, "PROT_EXEC clear", ...), or "any".
//! - arch: "both" when both arches' policies hold the rule, else "x86_64"
//!   or "aarch64".
//! - why: the rule's comment, verbatim (`|` written as `\|`).
//!
//! The names are checked against roles.json (its shared list plus the
//! role's arch_only names, per arch) and the rows against the policy
//! files; a failure prints the rows to add or remove.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

const ARCHES: [&str; 2] = ["x86_64", "aarch64"];
/// The arch cell of a rule both arches hold.
const BOTH: &str = "both";
/// The only-with cell of a rule without argument conditions.
const ANY: &str = "any";
/// What a role's section heading starts with, after the `#`s.
const HEADING: &str = "Seccomp policy `";
const DOC: &str = "docs/jail.md";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(relative: &str) -> Value {
    serde_json::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// One rule as the doc's table shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    syscall: String,
    only: String,
    arch: String,
    why: String,
}

impl Row {
    /// The row as it should stand in the doc.
    fn markdown(&self) -> String {
        let escape = |s: &str| s.replace('|', "\\|");
        format!(
            "| `{}` | {} | {} | {} |",
            self.syscall,
            escape(&self.only),
            self.arch,
            escape(&self.why)
        )
    }

    fn on(&self, arch: &str) -> bool {
        self.arch == BOTH || self.arch == arch
    }
}

/// A table row's cells, trimmed; `\|` is a `|` inside a cell.
fn cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut chars = line.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().expect("one cell at least").push('|');
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().expect("one cell at least").push(c),
        }
    }
    // "| a | b |" splits into "", " a ", " b ", "".
    cells.remove(0);
    if cells.last().is_some_and(|c| c.trim().is_empty()) {
        cells.pop();
    }
    cells.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// A line of the doc, with its number for messages.
type Line = (usize, String);

/// Role -> the lines of its section. Panics on a role with two sections.
fn sections(doc: &str) -> BTreeMap<String, Vec<Line>> {
    let mut out: BTreeMap<String, Vec<Line>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_fence = false;
    for (i, line) in doc.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if line.starts_with('#') {
            let title = line.trim_start_matches('#').trim();
            current = title
                .strip_prefix(HEADING)
                .and_then(|rest| rest.split_once('`'))
                .map(|(role, _)| role.to_owned());
            if let Some(role) = &current {
                assert!(
                    !out.contains_key(role),
                    "{DOC}:{}: a second section for `{role}`",
                    i + 1
                );
                out.insert(role.clone(), Vec::new());
            }
            continue;
        }
        if let Some(role) = &current {
            out.entry(role.clone())
                .or_default()
                .push((i + 1, line.to_owned()));
        }
    }
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The rows of one role's section; panics on a row it cannot read.
fn rows(role: &str, lines: &[Line]) -> Vec<Row> {
    let mut out = Vec::new();
    for (n, line) in lines {
        if !line.trim_start().starts_with('|') {
            continue;
        }
        let c = cells(line);
        let separator = c
            .iter()
            .all(|cell| !cell.is_empty() && cell.chars().all(|ch| ch == '-' || ch == ':'));
        if separator || c.first().is_some_and(|cell| cell == "syscall") {
            continue;
        }
        assert_eq!(
            c.len(),
            4,
            "{DOC}:{n}: a row of `{role}`'s table has 4 cells (syscall, only with, arch, why): {line}"
        );
        let syscall = c[0]
            .strip_prefix('`')
            .and_then(|s| s.strip_suffix('`'))
            .filter(|s| is_name(s))
            .unwrap_or_else(|| {
                panic!("{DOC}:{n}: the first cell of a `{role}` row must be a syscall name in backticks: {line}")
            });
        let arch = &c[2];
        assert!(
            arch == BOTH || ARCHES.contains(&arch.as_str()),
            "{DOC}:{n}: arch is {BOTH}, x86_64 or aarch64, not {arch:?}"
        );
        out.push(Row {
            syscall: syscall.to_owned(),
            only: c[1].clone(),
            arch: arch.clone(),
            why: c[3].clone(),
        });
    }
    out
}

/// The doc's rows per role.
fn documented() -> BTreeMap<String, Vec<Row>> {
    sections(&read(DOC))
        .into_iter()
        .map(|(role, lines)| {
            let rows = rows(&role, &lines);
            (role, rows)
        })
        .collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// Role -> arch -> the syscalls roles.json allows it there.
fn shared_list() -> BTreeMap<String, BTreeMap<&'static str, BTreeSet<String>>> {
    let shared = json("seccomp-policies/roles.json");
    let roles = shared["roles"].as_object().expect("roles.json has roles");
    roles
        .iter()
        .map(|(role, common)| {
            let per_arch = ARCHES
                .into_iter()
                .map(|arch| {
                    let mut names = strings(common);
                    names.extend(strings(&shared["arch_only"][arch][role]));
                    (arch, names)
                })
                .collect();
            (role.clone(), per_arch)
        })
        .collect()
}

/// The only-with cell for a rule's argument conditions.
fn only_with(rule: &Value) -> String {
    let conditions: Vec<String> = rule["args"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|arg| match arg["comment"].as_str() {
            Some(comment) => comment.to_owned(),
            None => format!("arg{} {} {}", arg["index"], arg["op"], arg["val"]),
        })
        .collect();
    if conditions.is_empty() {
        ANY.to_owned()
    } else {
        conditions.join("; ")
    }
}

/// The rows the role's policy files call for.
fn policy_rows(role: &str) -> BTreeSet<Row> {
    let mut arches: BTreeMap<(String, String, String), Vec<&str>> = BTreeMap::new();
    for arch in ARCHES {
        let file = format!("seccomp-policies/{arch}/{role}.json");
        let policy = json(&file);
        let rules = policy[role]["filter"]
            .as_array()
            .unwrap_or_else(|| panic!("{file} has no filter for {role}"));
        for rule in rules {
            let syscall = rule["syscall"].as_str().expect("a syscall name");
            let why = rule["comment"].as_str().unwrap_or_default();
            let key = (syscall.to_owned(), only_with(rule), why.to_owned());
            arches.entry(key).or_default().push(arch);
        }
    }
    arches
        .into_iter()
        .map(|((syscall, only, why), on)| Row {
            syscall,
            only,
            arch: if on.len() == ARCHES.len() {
                BOTH.to_owned()
            } else {
                on[0].to_owned()
            },
            why,
        })
        .collect()
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn every_role_has_one_section_and_no_other_role_has_one() {
    let roles: BTreeSet<String> = shared_list().into_keys().collect();
    let sections: BTreeSet<String> = documented().into_keys().collect();
    let missing: Vec<_> = roles.difference(&sections).collect();
    let unknown: Vec<_> = sections.difference(&roles).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "{DOC}: no \"{HEADING}ROLE`\" section for [{}]; sections for roles roles.json lacks: [{}]",
        list(missing),
        list(unknown)
    );
}

#[test]
fn each_section_names_every_syscall_its_role_allows_and_no_other() {
    let doc = documented();
    let mut failures = Vec::new();
    for (role, per_arch) in shared_list() {
        let Some(rows) = doc.get(&role) else {
            failures.push(format!("`{role}`: no section"));
            continue;
        };
        for (arch, allowed) in per_arch {
            let named: BTreeSet<String> = rows
                .iter()
                .filter(|r| r.on(arch))
                .map(|r| r.syscall.clone())
                .collect();
            let missing: Vec<_> = allowed.difference(&named).collect();
            let extra: Vec<_> = named.difference(&allowed).collect();
            if !missing.is_empty() {
                failures.push(format!("`{role}` on {arch} lacks [{}]", list(missing)));
            }
            if !extra.is_empty() {
                failures.push(format!(
                    "`{role}` on {arch} names [{}], which roles.json does not allow it",
                    list(extra)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{DOC}:\n{}", failures.join("\n"));
}

#[test]
fn each_section_has_one_row_per_rule_of_its_policies() {
    let doc = documented();
    let mut failures = Vec::new();
    for role in shared_list().into_keys() {
        let rows = doc.get(&role).cloned().unwrap_or_default();
        let documented: BTreeSet<Row> = rows.iter().cloned().collect();
        if documented.len() != rows.len() {
            failures.push(format!("`{role}`: a row stands twice"));
        }
        let want = policy_rows(&role);
        for row in want.difference(&documented) {
            failures.push(format!("`{role}`: add  {}", row.markdown()));
        }
        for row in documented.difference(&want) {
            failures.push(format!("`{role}`: drop {}", row.markdown()));
        }
    }
    assert!(
        failures.is_empty(),
        "{DOC} and the policies differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn table_cells_split_on_unescaped_bars() {
    assert_eq!(
        cells("| `ioctl` | KVM_RUN | both | a \\| b |"),
        vec!["`ioctl`", "KVM_RUN", "both", "a | b"]
    );
    assert_eq!(cells("|---|---|"), vec!["---", "---"]);
}
