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
#   BALANCER_HOST        names of the balancer replicas, separated by spaces or commas
#   BALANCER_PORT        data port (8001)        BALANCER_ADMIN_PORT  admin port (9001)
#   BALANCER_WATCH_INTERVAL  seconds between lookups (default 2; 0 = write the lists once, no loop)
#   BALANCER_UPSTREAMS_DIR   where the lists go (default /etc/nginx/conf.d/upstreams, as included
#                            by default.conf)
set -u

out=${BALANCER_UPSTREAMS_DIR:-/etc/nginx/conf.d/upstreams}
interval=${BALANCER_WATCH_INTERVAL:-2}
names=${BALANCER_HOST//,/ }
if ! mkdir -p "$out" || [ ! -w "$out" ]; then
  echo "$(basename "$0"): cannot write $out (a read-only root needs a writable /etc/nginx/conf.d)" >&2
  exit 1
fi

# Sorted unique IPv4 addresses of every name (nothing for a name that does not resolve now). One
# `getent` per lookup and bash for the rest: this runs all the time, and forks are its only cost.
addresses() {
  local ip _rest
  local -A seen=()
  # shellcheck disable=SC2086 # one argument per name
  while read -r ip _rest; do seen[$ip]=1; done < <(getent ahostsv4 $names)
  printf '%s\n' "${!seen[@]}" | sort
}

# One upstream file per port. A name that resolves to nothing yet leaves a server that refuses at
# once (nginx answers with its BALANCER_UNAVAILABLE page), so nginx still starts.
render() {
  local ips=$1 port file tmp
  for pair in "data:${BALANCER_PORT}" "admin:${BALANCER_ADMIN_PORT}"; do
    file="$out/${pair%%:*}.inc"
    port=${pair#*:}
    tmp="$file.tmp"
    {
      echo "# written by $(basename "$0") from DNS: ${names}"
      if [ -z "$ips" ]; then echo "server 127.0.0.1:1 max_fails=0;"; fi
      for ip in $ips; do echo "server ${ip}:${port} max_fails=1 fail_timeout=2s;"; done
    } > "$tmp"
    mv "$tmp" "$file"
  done
}

current=$(addresses)
render "$current"
echo "$(basename "$0"): balancers: ${current//$'\n'/ }"

watch() {
  local next
  while sleep "$interval"; do
    next=$(addresses)
    # A failed lookup is not "no balancers": keep the last list until DNS answers with addresses.
    if [ -n "$next" ] && [ "$next" != "$current" ]; then
      render "$next"
      if nginx -t -q 2>/dev/null && nginx -s reload 2>/dev/null; then
        echo "$(basename "$0"): balancers now: ${next//$'\n'/ } (nginx reloaded)"
        current=$next
      fi
    fi
  done
}
[ "$interval" = 0 ] && exit 0
# Detached from the entrypoint, which goes on to exec nginx; the init process reaps it.
watch </dev/null &
