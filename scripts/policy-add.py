#!/usr/bin/env python3
"""Adds one rule to a role's seccomp policy, on every arch, and the syscall
to seccomp-policies/roles.json (the shared list the policy test holds the
files to). Usage:
  python3 scripts/policy-add.py ROLE SYSCALL "why" ['[{"index":0,...}]']
A syscall that exists on one arch only goes to that arch's file by hand."""
import json, sys, pathlib

root = pathlib.Path(__file__).resolve().parent.parent / "seccomp-policies"
role, syscall, comment = sys.argv[1:4]
args = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None

for arch in ("x86_64", "aarch64"):
    path = root / arch / f"{role}.json"
    policy = json.loads(path.read_text())
    rule = {"syscall": syscall, "comment": comment}
    if args:
        rule["args"] = args
    rules = policy[role]["filter"]
    rules.append(rule)
    rules.sort(key=lambda r: r["syscall"])
    path.write_text(json.dumps(policy, indent=2) + "\n")

roles = root / "roles.json"
shared = json.loads(roles.read_text())
names = shared["roles"][role]
if syscall not in names:
    names.append(syscall)
    names.sort()
roles.write_text(json.dumps(shared, indent=2) + "\n")
