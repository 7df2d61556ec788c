#!/bin/bash
# Keeps nginx's upstream lists of balancers equal to what DNS says, off the request path.
#
# nginx 1.22 can re-resolve a name per request (a variable in proxy_pass), but then every request
# that finds the cached answer expired waits for the DNS server (Docker's embedded DNS is slow
# exactly while containers start and stop), and it cannot keep connections to the balancer alive.
# Instead nginx gets a plain `upstream` block with keep-alive and passive failover between the
# balancer replicas, and this loop rewrites the block's server list and reloads nginx (gracefully:
# old workers finish their requests) only when the set of addresses changes.
#
# The first name is the active balancer, the others are hot standbys (nginx `backup`): every
# request goes through one balancer at a time, so its in-flight counts are the whole truth and
# least-connections stays exact; a standby takes over the moment the active one cannot be reached
# (restart, upgrade, crash) and hands back once it answers again.
#
#   BALANCER_HOST        balancer names, separated by spaces or commas: the active one first
#   BALANCER_PORT        data port (8001)        BALANCER_ADMIN_PORT  admin port (9001)
#   BALANCER_WATCH_INTERVAL  seconds between lookups (default 5; 0 = write the lists once, no loop).
#                            Failover does not wait for it (nginx skips a balancer that fails);
#                            only a new address (an upgraded balancer) does, and the standby
#                            serves meanwhile. Each round forks one getent per name, nothing
#                            more (no sleep, sort or subshell unless the set changed).
#   BALANCER_FORGET_AFTER    seconds an address stays listed after it left DNS (default 30)
#   BALANCER_UPSTREAMS_DIR   where the lists go (default /etc/nginx/conf.d/upstreams, as included
#                            by default.conf)
set -u

me=$(basename "$0")
out=${BALANCER_UPSTREAMS_DIR:-/etc/nginx/conf.d/upstreams}
interval=${BALANCER_WATCH_INTERVAL:-5}
forget_after=${BALANCER_FORGET_AFTER:-30}
read -r -a names <<< "${BALANCER_HOST//,/ }"
if [ "${#names[@]}" -eq 0 ]; then
  echo "$me: BALANCER_HOST names no balancer" >&2
  exit 1
fi
active=${names[0]}
standbys=("${names[@]:1}")
if ! mkdir -p "$out" || [ ! -w "$out" ]; then
  echo "$me: cannot write $out (a read-only root needs a writable /etc/nginx/conf.d)" >&2
  exit 1
fi

# One lookup: fills `found` (address -> active | standby; none for a name that does not resolve;
# an address under both roles counts as active). One getent per name and nothing else forked: this
# runs every few seconds for the container's whole life, and forks are its only cost.
declare -A found=()
lookup() {
  local ip _rest name
  found=()
  for name in "${standbys[@]}"; do
    while read -r ip _rest; do found[$ip]=standby; done < <(getent ahostsv4 "$name")
  done
  while read -r ip _rest; do found[$ip]=active; done < <(getent ahostsv4 "$active")
}

# "role ip" lines of a set of them (the keys of the named associative array), sorted: what
# render() takes and the log shows. Only run when the set changed.
listing_of() {
  local -n set=$1
  if [ "${#set[@]}" -gt 0 ]; then printf '%s\n' "${!set[@]}" | sort; fi
}

render() {
  local listing=$1 role ip port file has_active=0 backup
  case $'\n'"$listing" in *$'\n'active\ *) has_active=1 ;; esac
  for pair in "data:${BALANCER_PORT}" "admin:${BALANCER_ADMIN_PORT}"; do
    file="$out/${pair%%:*}.inc"
    port=${pair#*:}
    {
      echo "# written by $me from DNS (active ${active}, standby ${standbys[*]:-none})"
      [ -n "$listing" ] || echo "server 127.0.0.1:1 max_fails=0;"
      while read -r role ip; do
        [ -n "$ip" ] || continue
        backup=''
        [ "$role" = standby ] && [ "$has_active" = 1 ] && backup=' backup'
        echo "server ${ip}:${port} max_fails=1 fail_timeout=2s${backup};"
      done <<< "$listing"
    } > "$file.tmp"
    mv "$file.tmp" "$file"
  done
}

lookup
declare -A listed=()
for ip in "${!found[@]}"; do listed["${found[$ip]} $ip"]=1; done
current=$(listing_of listed)
render "$current"
echo "$me: balancers: ${current//$'\n'/, }"
[ "$interval" = 0 ] && exit 0

# Waits `interval` seconds without forking `sleep`: a read that times out on a FIFO nobody writes.
tick=
if fifo=$(mktemp -u /tmp/balancer-watch.XXXXXX) && mkfifo "$fifo" 2>/dev/null; then
  exec {tick}<>"$fifo"
  rm -f "$fifo"
fi
pause() {
  if [ -n "$tick" ]; then
    read -r -t "$interval" -u "$tick" _ || true
  else
    sleep "$interval"
  fi
}

# Each address seen in DNS stays listed until it has been gone `forget_after` seconds (a
# restarting balancer drops out of Docker's DNS for a moment; nginx's `backup` covers it).
# Unchanged sets (almost every round) cost the getent calls and a few bash builtins.
watch() {
  local line ip changed
  local -A last_seen=()
  for line in "${!listed[@]}"; do last_seen[$line]=$SECONDS; done
  while pause; do
    lookup
    [ "${#found[@]}" -gt 0 ] || continue
    for ip in "${!found[@]}"; do last_seen["${found[$ip]} $ip"]=$SECONDS; done
    for line in "${!last_seen[@]}"; do
      if (( SECONDS - last_seen[$line] > forget_after )); then unset "last_seen[$line]"; fi
    done
    changed=0
    [ "${#last_seen[@]}" = "${#listed[@]}" ] || changed=1
    for line in "${!last_seen[@]}"; do [ -n "${listed[$line]:-}" ] || changed=1; done
    [ "$changed" = 1 ] || continue
    local listing
    listing=$(listing_of last_seen)
    render "$listing"
    if nginx -t -q 2>/dev/null && nginx -s reload 2>/dev/null; then
      echo "$me: balancers now: ${listing//$'\n'/, } (nginx reloaded)"
      listed=()
      for line in "${!last_seen[@]}"; do listed[$line]=1; done
    fi
  done
}
watch </dev/null &
