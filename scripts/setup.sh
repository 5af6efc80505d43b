#!/usr/bin/env bash
# Set-up for `npm test` (and `npm run demo`): everything the test suite needs, on a fresh
# Debian clone, so a newcomer's green run checks exactly what CI checks.
#
#   1. system tools the tests start for real: promtool + prometheus, chromium, openssl,
#      etcd (Debian packages prometheus, chromium, openssl, etcd-server); installed with apt
#      when missing and we are root, otherwise a failure naming the packages.
#   2. node dependencies (npm install) when node_modules is missing or package*.json changed.
#   3. the Python virtualenv at .venv with the client installed editable plus its test extra
#      (`pip install -e 'clients/python[test]'`): the test dependencies live in
#      clients/python/pyproject.toml, nowhere else.
#
# Idempotent and fast when already done: steps 2 and 3 are keyed by a stamp holding the hash
# of their requirement files (a stale stamp reruns the step, a current one costs a sha256sum).
# `scripts/setup.sh node` does step 2 only (the demo needs nothing else).
#
# A `.venv` that is a symlink is someone else's virtualenv (e.g. a worktree sharing the main
# checkout's): it is checked, never modified.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: FAILED: %s\n' "$*" >&2; exit 1; }

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- system tools
system_tools() {
  # binary:debian-package
  local wanted=(promtool:prometheus prometheus:prometheus chromium:chromium openssl:openssl etcd:etcd-server)
  local missing=() pkgs=()
  for pair in "${wanted[@]}"; do
    local bin="${pair%%:*}" pkg="${pair#*:}"
    if ! command -v "$bin" >/dev/null 2>&1; then
      missing+=("$bin")
      [[ " ${pkgs[*]} " == *" $pkg "* ]] || pkgs+=("$pkg")
    fi
  done
  # `python3 -m venv` needs ensurepip, which Debian ships separately.
  if [ ! -e .venv ] && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    missing+=("python3 ensurepip"); pkgs+=(python3-venv)
  fi
  [ ${#pkgs[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "the tests need ${missing[*]}: install the Debian packages: apt-get install ${pkgs[*]} (as root), then rerun npm test"
  fi
  say "installing ${pkgs[*]} (for ${missing[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null \
    || die "apt-get install ${pkgs[*]} failed"
  for bin in "${missing[@]}"; do
    [ "$bin" = "python3 ensurepip" ] && continue
    command -v "$bin" >/dev/null 2>&1 || die "installed ${pkgs[*]} but $bin is still not on PATH"
  done
}

# ---------------------------------------------------------------- node
node_deps() {
  local stamp=node_modules/.mixflow-setup
  local want
  want="$(hash_of package.json package-lock.json)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  say "npm install (node_modules missing or package*.json changed)"
  # npm install rather than npm ci: ci deletes node_modules before installing, and this
  # step also runs on a checkout whose node_modules is only stale. The lock file itself is
  # one npm ci takes unchanged (test/packaging/pack.test.ts checks both).
  npm install --no-save --no-audit --no-fund --prefer-offline >&2 || die "npm install failed"
  printf '%s\n' "$want" >"$stamp"
}

# ---------------------------------------------------------------- python
python_venv() {
  local py=.venv/bin/python
  if [ -L .venv ]; then
    [ -x "$py" ] || die ".venv is a symlink to $(readlink .venv) without bin/python"
    "$py" -c 'import grpc, numpy, pytest, torch, mixflow_client' 2>/dev/null \
      || die ".venv (a symlink to $(readlink .venv), not modified here) lacks the test dependencies: replace it with a real directory (rm .venv) and rerun npm test"
    return 0
  fi
  local stamp=.venv/.mixflow-setup
  local want
  # The editable install compiles proto/ into the client's descriptor set, so the protos are part of the key.
  want="$(hash_of clients/python/pyproject.toml clients/python/setup.py proto/mixflow/v1/*.proto)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$py" ]; then return 0; fi
  if [ ! -x "$py" ]; then
    say "creating the Python virtualenv at .venv"
    python3 -m venv .venv || die "python3 -m venv .venv failed (Debian: apt-get install python3-venv)"
  fi
  say "installing the Python client and its test extra into .venv (pip install -e 'clients/python[test]')"
  # The machine's pip config may point at a local mirror only: no retries against an unreachable index.
  # pip warns once per package about the mirror's missing index folders: noise, filtered.
  local log
  log="$(mktemp)"
  if ! .venv/bin/pip install -q --retries 0 -e 'clients/python[test]' >"$log" 2>&1; then
    grep -v "^WARNING: Location 'file:" "$log" >&2
    rm -f "$log"
    die "pip install -e 'clients/python[test]' failed (see above)"
  fi
  grep -v "^WARNING: Location 'file:" "$log" >&2 || true # grep exits 1 when every line was noise
  rm -f "$log"
  printf '%s\n' "$want" >"$stamp"
}

case "$what" in
  node) node_deps ;;
  all)
    system_tools
    node_deps
    python_venv
    ;;
  *) die "usage: scripts/setup.sh [all|node]" ;;
esac
