//! The reporter of `bench/run.sh`.
//!
//! `report smaps PID` prints one line for a live process: "RSS GUEST PRIVATE"
//! in KiB, where GUEST is the resident part of its guest-memory mappings
//! (memfd mappings, "/memfd:..." in /proc/PID/smaps) and PRIVATE the private
//! pages of everything else.
//!
//! `report table DIR` reads what run.sh left in DIR (hyperfine's start.json
//! and exits.json, memory.tsv) and prints medians, ratios and targets.

use std::collections::HashMap;
use std::error::Error;
use std::fmt::Write as _;

use argh::FromArgs;
use serde_json::Value;

type Res<T> = Result<T, Box<dyn Error>>;

/// Reporter for bench/run.sh.
#[derive(FromArgs)]
struct Args {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Smaps(SmapsArgs),
    Table(TableArgs),
}

/// Print "RSS GUEST PRIVATE" (KiB) of a live process.
#[derive(FromArgs)]
#[argh(subcommand, name = "smaps")]
struct SmapsArgs {
    /// the process
    #[argh(positional)]
    pid: u32,
}

/// Print the table of results found in DIR.
#[derive(FromArgs)]
#[argh(subcommand, name = "table")]
struct TableArgs {
    /// where run.sh wrote start.json, exits.json and memory.tsv
    #[argh(positional)]
    dir: String,
    /// the number of port writes of the exit round-trip guests
    #[argh(option, default = "100_000")]
    writes: u32,
}

/// Exit codes each benchmark must have given on every run.
const EXPECTED_EXIT: &[(&str, i64)] = &[("qemu", 67), ("qemu-fw", 67)];
/// The memory target for the vm process, besides guest memory.
const VM_TARGET_KIB: u64 = 2048;

/// (RSS, guest memory RSS, private non-guest) in KiB.
fn smaps(pid: u32) -> Res<(u64, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let (mut rss, mut guest, mut private) = (0, 0, 0);
    let mut in_guest = false;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if !first.ends_with(':') {
            // A mapping header: "start-end perms offset dev inode [path]".
            in_guest = fields
                .nth(4)
                .is_some_and(|path| path.starts_with("/memfd:"));
            continue;
        }
        let kib: u64 = match fields.next().map(str::parse) {
            Some(Ok(kib)) => kib,
            _ => continue,
        };
        match first {
            "Rss:" => {
                rss += kib;
                if in_guest {
                    guest += kib;
                }
            }
            "Private_Clean:" | "Private_Dirty:" if !in_guest => private += kib,
            _ => {}
        }
    }
    Ok((rss, guest, private))
}

/// One benchmark of a hyperfine JSON export.
struct Run {
    median: f64,
    min: f64,
    exit_codes: Vec<i64>,
}

type Runs = HashMap<String, Run>;

/// The benchmarks of a hyperfine JSON export, by name.
fn load_runs(path: &str) -> Res<Runs> {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut out = HashMap::new();
    for result in json["results"].as_array().ok_or("no results")? {
        let name = result["command"].as_str().ok_or("no command")?.to_string();
        let run = Run {
            median: result["median"].as_f64().ok_or("no median")?,
            min: result["min"].as_f64().ok_or("no min")?,
            exit_codes: result["exit_codes"]
                .as_array()
                .map(|codes| codes.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default(),
        };
        out.insert(name, run);
    }
    Ok(out)
}

fn check_exit_codes(runs: &Runs, out: &mut String) {
    for (name, run) in runs {
        let expected = EXPECTED_EXIT
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |&(_, code)| code);
        if let Some(bad) = run.exit_codes.iter().find(|&&c| c != expected) {
            let _ = writeln!(out, "WARNING: {name} exited {bad} (expected {expected})");
        }
    }
}

/// Median of cordon over the median of `base`.
fn cordon_over(runs: &Runs, base: &str) -> Option<f64> {
    match (runs.get("cordon"), runs.get(base)) {
        (Some(c), Some(b)) if b.median > 0.0 => Some(c.median / b.median),
        _ => None,
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}x"))
}

fn verdict(ratio: Option<f64>, target: f64) -> &'static str {
    match ratio {
        Some(r) if r <= target => "met",
        Some(_) => "MISSED",
        None => "not measured",
    }
}

fn timing_table(title: &str, runs: &Runs, per_exit: Option<u32>, out: &mut String) {
    let _ = writeln!(out, "{title}");
    let per_exit_header = if per_exit.is_some() {
        "us per exit"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  {:<16} {:>10} {:>10} {:>12}",
        "", "median ms", "min ms", per_exit_header
    );
    let mut names: Vec<&String> = runs.keys().collect();
    names.sort_by(|a, b| runs[*a].median.total_cmp(&runs[*b].median));
    for name in names {
        let run = &runs[name];
        let per = per_exit.map_or(String::new(), |n| {
            format!("{:.2}", run.median * 1e6 / f64::from(n))
        });
        let (median, min) = (run.median * 1e3, run.min * 1e3);
        let _ = writeln!(out, "  {name:<16} {median:>10.2} {min:>10.2} {per:>12}");
    }
    let _ = writeln!(
        out,
        "  cordon/floor {}   cordon/qemu {}   (medians)",
        ratio(cordon_over(runs, "floor")),
        ratio(cordon_over(runs, "qemu"))
    );
    check_exit_codes(runs, out);
}

fn memory_table(path: &str, out: &mut String) -> Res<Option<u64>> {
    let text = std::fs::read_to_string(path)?;
    let _ = writeln!(
        out,
        "Memory while the guest is alive (KiB; guest = its memfd mappings)"
    );
    let _ = writeln!(
        out,
        "  {:<18} {:>8} {:>8} {:>12} {:>16}",
        "process", "RSS", "guest", "RSS - guest", "private - guest"
    );
    let mut vm = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let [name, rss, guest, private] = f[..] else {
            return Err(format!("bad memory line: {line}").into());
        };
        let (rss, guest): (u64, u64) = (rss.parse()?, guest.parse()?);
        let rest = rss.saturating_sub(guest);
        if name == "cordon vm" {
            vm = Some(rest);
        }
        let _ = writeln!(
            out,
            "  {name:<18} {rss:>8} {guest:>8} {rest:>12} {private:>16}"
        );
    }
    Ok(vm)
}

fn table(args: &TableArgs) -> Res<String> {
    let mut out = String::new();
    let start = format!("{}/start.json", args.dir);
    let exits = format!("{}/exits.json", args.dir);
    let (start, exits) = (load_runs(&start)?, load_runs(&exits)?);
    timing_table(
        "Cold start, process start to exit (cordon: the hello guest; cordon-exit-now: a guest that exits at once, like the floor)",
        &start,
        None,
        &mut out,
    );
    let _ = writeln!(out);
    let title = format!("Exit round trip ({} port writes, then exit)", args.writes);
    timing_table(&title, &exits, Some(args.writes), &mut out);
    let _ = writeln!(
        out,
        "  (qemu's guest runs in ring 0, emulated on kvm_pvm: not comparable)"
    );
    let _ = writeln!(out);
    let vm = memory_table(&format!("{}/memory.tsv", args.dir), &mut out)?;
    let _ = writeln!(out);
    let _ = writeln!(out, "Targets");
    let _ = writeln!(
        out,
        "  cold start      <= 2x floor        {}",
        verdict(cordon_over(&start, "floor"), 2.0)
    );
    let _ = writeln!(
        out,
        "  exit round trip <= 1.1x floor      {}",
        verdict(cordon_over(&exits, "floor"), 1.1)
    );
    let vm_ratio = vm.map(|kib| kib as f64 / VM_TARGET_KIB as f64);
    let _ = writeln!(
        out,
        "  vm process      <= 2 MiB + guest   {}",
        verdict(vm_ratio, 1.0)
    );
    Ok(out)
}

fn main() -> Res<()> {
    let args: Args = argh::from_env();
    match args.command {
        Command::Smaps(a) => {
            let (rss, guest, private) = smaps(a.pid)?;
            println!("{rss}\t{guest}\t{private}");
        }
        Command::Table(a) => print!("{}", table(&a)?),
    }
    Ok(())
}
