//! The per-arch policy files against the one shared list,
//! `seccomp-policies/roles.json`, so x86_64 and aarch64 cannot drift; and
//! the stacking rules: a child inherits the supervisor's filter and a vCPU
//! thread the vm's, so those must allow everything their children do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

const ARCHES: [&str; 2] = ["x86_64", "aarch64"];

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../seccomp-policies")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// role -> its rules, for one arch.
fn arch_rules(arch: &str) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(policies().join(arch)).expect("arch dir") {
        let path = entry.expect("dir entry").path();
        let role = path.file_stem().unwrap().to_string_lossy().into_owned();
        let doc = load(&path);
        let filter = &doc[&role];
        assert_eq!(
            filter["mismatch_action"], "trap",
            "{role} ({arch}) must trap by default"
        );
        assert_eq!(filter["match_action"], "allow", "{role} ({arch})");
        out.insert(
            role,
            filter["filter"].as_array().cloned().unwrap_or_default(),
        );
    }
    out
}

fn syscalls(rules: &[Value]) -> BTreeSet<String> {
    rules
        .iter()
        .map(|r| r["syscall"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn both_arches_hold_exactly_the_shared_list() {
    let shared = load(&policies().join("roles.json"));
    let roles: BTreeMap<String, BTreeSet<String>> = shared["roles"]
        .as_object()
        .expect("roles")
        .iter()
        .map(|(k, v)| (k.clone(), names(v)))
        .collect();
    let expected_roles: BTreeSet<&str> =
        jail::seccomp::Role::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(
        roles.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        expected_roles
    );
    for arch in ARCHES {
        let files = arch_rules(arch);
        assert_eq!(
            files.keys().collect::<BTreeSet<_>>(),
            roles.keys().collect::<BTreeSet<_>>(),
            "{arch}: the policy files are not the shared list's roles"
        );
        for (role, common) in &roles {
            let mut want = common.clone();
            want.extend(names(&shared["arch_only"][arch][role]));
            assert_eq!(
                syscalls(&files[role]),
                want,
                "{arch}/{role}.json against roles.json"
            );
        }
    }
}

#[test]
fn every_rule_says_why() {
    for arch in ARCHES {
        for (role, rules) in arch_rules(arch) {
            for rule in rules {
                let comment = rule["comment"].as_str().unwrap_or("");
                assert!(
                    !comment.trim().is_empty(),
                    "{arch}/{role}: {rule} has no comment"
                );
            }
        }
    }
}

fn ioctl_requests(rules: &[Value]) -> BTreeSet<u64> {
    rules
        .iter()
        .filter(|r| r["syscall"] == "ioctl")
        .map(|r| {
            let args = r["args"]
                .as_array()
                .expect("ioctl is filtered by request number");
            let req = args
                .iter()
                .find(|a| a["index"] == 1)
                .expect("a request condition");
            assert_eq!(req["op"], "eq");
            req["val"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn inherited_filters_allow_what_their_children_do() {
    for arch in ARCHES {
        let files = arch_rules(arch);
        let sup = &files["supervisor"];
        for (role, rules) in &files {
            assert!(
                syscalls(rules).is_subset(&syscalls(sup)),
                "{arch}: supervisor lacks {:?} of {role}",
                syscalls(rules)
                    .difference(&syscalls(sup))
                    .collect::<Vec<_>>()
            );
            assert!(
                ioctl_requests(rules).is_subset(&ioctl_requests(sup)),
                "{arch}: {role} ioctls"
            );
        }
        let (vm, vcpu) = (&files["vm-unikernel"], &files["vcpu-unikernel"]);
        assert!(
            syscalls(vcpu).is_subset(&syscalls(vm)),
            "{arch}: vm lacks vcpu syscalls"
        );
        assert!(
            ioctl_requests(vcpu).is_subset(&ioctl_requests(vm)),
            "{arch}: vm lacks vcpu ioctls"
        );
    }
}

#[test]
fn jailed_roles_never_map_executable_memory_and_rng_has_no_ioctl_but_fionbio() {
    for arch in ARCHES {
        for (role, rules) in arch_rules(arch) {
            if role == "supervisor" {
                continue;
            }
            for rule in rules
                .iter()
                .filter(|r| r["syscall"] == "mmap" || r["syscall"] == "mprotect")
            {
                let a = &rule["args"][0];
                assert_eq!(
                    (&a["index"], &a["op"]["masked_eq"], &a["val"]),
                    (&2.into(), &4.into(), &0.into()),
                    "{arch}/{role}: {rule} must require PROT_EXEC clear"
                );
            }
            if role == "device-rng" {
                assert_eq!(
                    ioctl_requests(&rules),
                    BTreeSet::from([0x5421]),
                    "{arch}: rng ioctls"
                );
            }
        }
    }
}
