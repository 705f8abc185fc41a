#!/bin/bash
# Runs the jail crate's wall tests again as an unprivileged user made for
# the purpose (cordon-test, no groups, no capabilities): every layer must
# hold, and be applicable, without root. The cgroup layer needs a cgroup
# delegated to the user; tests/unprivileged.rs covers it that way.
set -euo pipefail
cd "$(dirname "$0")/.."
id cordon-test >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin cordon-test
uid=$(id -u cordon-test)
gid=$(id -g cordon-test)
cargo test -p jail --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["kind"] == ["test"] and m["target"]["name"] != "cgroup":
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do
    echo "--- $name as uid $uid"
    (cd /tmp && setpriv --reuid="$uid" --regid="$gid" --clear-groups "$exe")
done
