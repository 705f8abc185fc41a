#!/usr/bin/env python3
"""Device restart times, for bench/restart.sh: runs the console-echo guest
with --console under `--on-vcpu-fault reset-vcpu`, kills its console device
process RESTARTS times (each time after a line went through), and prints
the median, min and max time from the supervisor's fault record to the vm
process's last DeviceReconnected event for it (both consoles replayed).

    python3 bench/restart_device.py CORDON GUEST_DIR RESTARTS EVENTS_FILE
"""
import json
import os
import signal
import statistics
import subprocess
import sys

cordon, guests, restarts, events = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cmd = [cordon, "run", "--log-level", "debug", "--console", "--on-vcpu-fault", "reset-vcpu",
       "--max-restarts", str(restarts), "--restart-window", "3600", "--events", events,
       os.path.join(guests, "console-echo")]
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, bufsize=1)
NEEDLE = "console0+console1 device process started, pid "


def started():
    for line in p.stderr:
        if NEEDLE in line:
            return int(line.split(NEEDLE)[1])
    sys.exit("restart_device.py: cordon ended early")


def echo(text):
    p.stdin.write(text + "\n")
    p.stdin.flush()
    for line in p.stdout:
        if line.rstrip("\n") == text:
            return
    sys.exit("restart_device.py: no echo")


for i in range(restarts):
    pid = started()
    echo(f"line {i}")
    os.kill(pid, signal.SIGKILL)
started()
echo("last")
p.stdin.write("quit\n")
p.stdin.close()
status = p.wait()
if status != 0:
    sys.exit(f"restart_device.py: cordon exited {status}")

samples, fault_at, pending = [], None, 0
for line in open(events):
    r = json.loads(line)
    if r["event"] == "fault" and r["action"] == "restart-device":
        fault_at, pending = r["time"], 2
    elif r["event"] == "vm" and "DeviceReconnected" in r["vm"] and fault_at is not None:
        pending -= 1
        if pending == 0:
            samples.append((r["time"] - fault_at) * 1e3)
            fault_at = None
ms = lambda x: f"{x:.2f} ms"
print(f"{'device':<10} devices: {'console':<7} restarts: {len(samples):>3}  "
      f"median {ms(statistics.median(samples))}  min {ms(min(samples))}  max {ms(max(samples))}")
