#!/bin/bash
# Writes nginx's balancer server lines once, at container start, from BALANCER_HOST. Nothing runs
# afterwards: nginx itself re-resolves every name (`server NAME:PORT resolve` in an upstream with a
# `zone`, nginx 1.27.3+), through the resolver written here, and follows a recreated balancer's new
# address within a second, without reloads and without keeping an address that left DNS.
#
# Every name is a peer of the same rank (no `backup`): the balancers share their in-flight counts,
# so nginx spreads requests over all of them, each address of each name (a scaled service has one
# per replica), and when one cannot be reached (restart, upgrade, crash) sends the request to another.
#
#   BALANCER_HOST          balancer names (or addresses), spaces or commas
#   BALANCER_PORT          data port (8001)        BALANCER_ADMIN_PORT  admin port (9001)
#   BALANCER_RESOLVER      DNS server(s) nginx asks (default: the nameservers of /etc/resolv.conf,
#                          Docker's 127.0.0.11 under Compose, the cluster DNS under Kubernetes)
#   BALANCER_RESOLVE_VALID seconds nginx keeps an answer (default 1)
#   BALANCER_UPSTREAMS_DIR where the lists go (default /etc/nginx/conf.d/upstreams, as included
#                          by default.conf)
set -u

me=$(basename "$0")
out=${BALANCER_UPSTREAMS_DIR:-/etc/nginx/conf.d/upstreams}
valid=${BALANCER_RESOLVE_VALID:-1}
read -r -a names <<< "${BALANCER_HOST//,/ }"
if [ "${#names[@]}" -eq 0 ]; then
  echo "$me: BALANCER_HOST names no balancer" >&2
  exit 1
fi
if ! [[ $valid =~ ^[1-9][0-9]*$ ]]; then
  echo "$me: BALANCER_RESOLVE_VALID must be a whole number of seconds (got '$valid')" >&2
  exit 1
fi
if ! mkdir -p "$out" || [ ! -w "$out" ]; then
  echo "$me: cannot write $out (a read-only root needs a writable /etc/nginx/conf.d)" >&2
  exit 1
fi

# The resolver nginx uses for `resolve`: given, or this container's own nameservers (IPv6 ones in
# brackets, as nginx wants them).
resolvers=${BALANCER_RESOLVER:-}
if [ -z "$resolvers" ]; then
  while read -r key value _; do
    [ "$key" = nameserver ] || continue
    case $value in *:*) value="[$value]" ;; esac
    resolvers+="${resolvers:+ }$value"
  done < /etc/resolv.conf
fi
if [ -z "$resolvers" ]; then
  echo "$me: no nameserver in /etc/resolv.conf; set BALANCER_RESOLVER" >&2
  exit 1
fi

# An address is used as it is; a name gets `resolve` (nginx follows its A records).
server_line() {
  local host=$1 port=$2 resolve=' resolve'
  [[ $host =~ ^[0-9.]+$ || $host == *:* ]] && resolve=''
  echo "server ${host}:${port}${resolve} max_fails=1 fail_timeout=2s;"
}

for pair in "data:${BALANCER_PORT}" "admin:${BALANCER_ADMIN_PORT}"; do
  file="$out/${pair%%:*}.inc"
  port=${pair#*:}
  {
    echo "# written by $me at start from BALANCER_HOST; nginx re-resolves the names itself"
    for name in "${names[@]}"; do server_line "$name" "$port"; done
  } > "$file.tmp" && mv "$file.tmp" "$file" || exit 1
done
echo "resolver ${resolvers} valid=${valid}s ipv6=off;" > "$out/resolver.inc" || exit 1
echo "$me: balancers ${names[*]}, every address active; names re-resolved every ${valid} s through ${resolvers}"
