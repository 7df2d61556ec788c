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
#                            serves meanwhile. Each lookup forks, so this is most of nginx's idle CPU.
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

# `ROLE IP` lines, sorted, for every address the names have now (none for a name that does not
# resolve). One `getent` per role and bash for the rest: this runs all the time, and forks are its
# only cost. An address under both roles counts as active.
lookup() {
  local ip _rest
  local -A role=()
  if [ "${#standbys[@]}" -gt 0 ]; then
    while read -r ip _rest; do role[$ip]=standby; done < <(getent ahostsv4 "${standbys[@]}")
  fi
  while read -r ip _rest; do role[$ip]=active; done < <(getent ahostsv4 "$active")
  for ip in "${!role[@]}"; do echo "${role[$ip]} $ip"; done | sort
}

# One upstream file per port. With no active address, the standbys serve as active ones (nginx
# wants at least one non-backup server); with no address at all, a server that refuses at once
# (nginx answers with its BALANCER_UNAVAILABLE page), so nginx still starts.
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

current=$(lookup)
render "$current"
echo "$me: balancers: ${current//$'\n'/, }"
[ "$interval" = 0 ] && exit 0

# A restarting balancer leaves DNS for a few seconds and comes back with the same address: nginx
# already skips it while it is away (max_fails), and a reload would close every idle keep-alive
# connection of its clients at once. So an address is dropped only after it has been gone for
# BALANCER_FORGET_AFTER seconds; new addresses (an upgraded balancer) are added at once.
watch() {
  local line listing next
  local -A last_seen=()
  while read -r line; do [ -n "$line" ] && last_seen[$line]=$SECONDS; done <<< "$current"
  while sleep "$interval"; do
    next=$(lookup)
    # A failed lookup is not "no balancers": keep the last list until DNS answers with addresses.
    [ -n "$next" ] || continue
    while read -r line; do last_seen[$line]=$SECONDS; done <<< "$next"
    for line in "${!last_seen[@]}"; do
      if (( SECONDS - last_seen[$line] > forget_after )); then unset "last_seen[$line]"; fi
    done
    listing=$(printf '%s\n' "${!last_seen[@]}" | sort)
    [ "$listing" != "$current" ] || continue
    render "$listing"
    if nginx -t -q 2>/dev/null && nginx -s reload 2>/dev/null; then
      echo "$me: balancers now: ${listing//$'\n'/, } (nginx reloaded)"
      current=$listing
    fi
  done
}
# Detached from the entrypoint, which goes on to exec nginx; the init process reaps it.
watch </dev/null &
