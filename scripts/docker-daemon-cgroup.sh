#!/usr/bin/env bash
# Gives the Docker daemons a CPU cgroup of their own, as systemd does on a normal host
# (docker.service, containerd.service), when they run in the root cgroup: that is how
# a daemon started by hand or by a bootstrap script without systemd runs them (CI's machines).
#
# Why it matters (measured; docs/measurements.md, "The cluster under change"): with the cgroupfs
# driver every container sits under one `docker` cgroup, which weighs as much as ONE process of the
# root cgroup. While Swarm or Compose starts tasks, dockerd, containerd, runc, and libnetwork's
# re-executed helpers (`exe`, iptables) are several runnable processes in that root cgroup, so all
# containers together, the balancer and nginx included, got a fraction of the 2 CPUs for seconds:
# the balancer's main thread waited on the run queue 60-100 % of the time and 200 GET/s through
# :8080 saw p50 0.4-4.6 s. In a cgroup of their own the daemons weigh as much as the containers.
#
# Prints one line. Changes nothing when dockerd is already in a cgroup of its own (systemd hosts),
# when it is not running, or without permission to write the cgroup files (then it says so).
# Idempotent: moves only daemon processes still in the root cgroup. Always exits 0: a host that
# cannot be changed still runs the cluster, only with the stalls described above.
set -uo pipefail

NAME=${LCB_DAEMON_CGROUP:-docker-daemons}
say() { echo "docker-daemon-cgroup: $*" >&2; }

dockerd_pid=$(pgrep -xo dockerd || true)
if [ -z "$dockerd_pid" ]; then say "no dockerd running; nothing to do"; exit 0; fi

# The cpu cgroup path of a process: cgroup v1's cpu controller line, else v2's unified line.
cpu_cgroup_of() {
  local line
  line=$(grep -E '^[0-9]+:([^:]*,)?cpu(,[^:]*)?:' "/proc/$1/cgroup" 2>/dev/null | head -1)
  [ -n "$line" ] || line=$(grep -E '^0::' "/proc/$1/cgroup" 2>/dev/null | head -1)
  echo "${line##*:}"
}

if [ -d /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cgroup.procs ]; then
  root=/sys/fs/cgroup/cpu   # cgroup v1
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  root=/sys/fs/cgroup       # cgroup v2
else
  say "no cpu cgroup hierarchy found; nothing to do"
  exit 0
fi

current=$(cpu_cgroup_of "$dockerd_pid")
if [ "$current" != / ] && [ "$current" != "/$NAME" ]; then
  say "dockerd already runs in its own cgroup ($current); nothing to do"
  exit 0
fi

target="$root/$NAME"
if ! mkdir -p "$target" 2>/dev/null || [ ! -w "$target/cgroup.procs" ]; then
  say "cannot write $target (not root?); the daemons stay in the root cgroup, and starting containers can stall the running ones"
  exit 0
fi
if [ "$root" = /sys/fs/cgroup ] && ! grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control; then
  echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
fi

# dockerd, containerd, the shims (daemonised: their parent is init) and every descendant still in
# the root cgroup (docker-proxy). Container processes are in cgroups of their own and are left
# alone; processes the daemons start later inherit $NAME.
pids=()
# (`containerd-shim` is the kernel's 15-character name of containerd-shim-runc-v2, wherever it is installed.)
# shellcheck disable=SC2207
queue=("$dockerd_pid" $(pgrep -x containerd || true) $(pgrep -x containerd-shim || true))
while [ "${#queue[@]}" -gt 0 ]; do
  pid=${queue[0]}
  queue=("${queue[@]:1}")
  [ "$(cpu_cgroup_of "$pid")" = / ] && pids+=("$pid")
  # shellcheck disable=SC2207
  queue+=($(pgrep -P "$pid" || true))
done

moved=0
for pid in "${pids[@]}"; do
  if echo "$pid" >"$target/cgroup.procs" 2>/dev/null; then moved=$((moved + 1)); fi
done
if [ "$moved" -gt 0 ]; then
  say "moved $moved daemon processes (dockerd $dockerd_pid, containerd, shims, proxies) from the root cgroup into $target"
else
  say "daemons already in $target"
fi
exit 0
