#!/usr/bin/env bash
# Installs what the tests need beyond Go: npm packages into the repo and,
# when missing and running as root, Debian's Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f package.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "test-deps: npm is missing; install Node.js 20+ and npm" >&2
    exit 1
  fi
  if [ ! -d node_modules ] || [ package.json -nt node_modules ] || { [ -f package-lock.json ] && [ package-lock.json -nt node_modules ]; }; then
    if [ -f package-lock.json ]; then
      npm ci --no-audit --no-fund --loglevel=error
    else
      npm install --no-audit --no-fund --loglevel=error
    fi
    touch node_modules
  fi
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: installing Debian's chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test-deps: chromium is missing and cannot be installed here (not root or no apt-get);" >&2
    echo "           browser tests fail under CI=true and are skipped otherwise" >&2
  fi
fi
