//! `cordon run` inside an emulated machine, once per case: the script that
//! runs the cases and what each printed.

use super::machine::Outcome;

/// The machine's script: mounts the cgroup2 hierarchy cordon's jail
/// needs, then runs `/bin/cordon run ARGS` per `(name, args)`, marking its
/// exit status (`NAME-status`) and every line of its stdout (`NAME-out`)
/// and stderr (`NAME-err`).
pub fn script(cases: &[(&str, &str)]) -> String {
    let mut script = String::from(
        r#"
mount -t cgroup2 none /sys/fs/cgroup
run_case() {
    name=$1; shift
    /bin/cordon run "$@" > /tmp/out 2> /tmp/err && s=0 || s=$?
    while read -r line; do mark "$name-out" "$line"; done < /tmp/out
    while read -r line; do mark "$name-err" "$line"; done < /tmp/err
    mark "$name-status" "$s"
}
"#,
    );
    for (name, args) in cases {
        script.push_str(&format!("run_case {name} {args}\n"));
    }
    script
}

/// What one case printed.
pub struct Case<'a> {
    pub status: &'a str,
    pub out: Vec<&'a str>,
    pub err: Vec<&'a str>,
}

impl Case<'_> {
    /// Case `name` of `outcome`; panics if it never ended.
    pub fn of<'a>(outcome: &'a Outcome, name: &str) -> Case<'a> {
        let lines = |suffix: &str| {
            let key = format!("{name}-{suffix}");
            outcome
                .marks()
                .iter()
                .filter(|m| m.name == key)
                .map(|m| m.value.as_str())
                .collect::<Vec<_>>()
        };
        Case {
            status: outcome.expect_mark(&format!("{name}-status")),
            out: lines("out"),
            err: lines("err"),
        }
    }

    pub fn err_has(&self, needle: &str) -> bool {
        self.err.iter().any(|l| l.contains(needle))
    }
}
