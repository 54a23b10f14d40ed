#!/usr/bin/env bash
# Checks the import direction of docs/design.md: imports point down the list
# runtime/scheduler → cosocket → broker → lsp → bench/cmd.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
imports() { go list -f '{{join .Imports "\n"}}' "./$1" | grep "^$mod/" | sed "s#^$mod/##" || true; }
allow() { # package, allowed project imports (regexp)
  local bad
  bad=$(imports "$1" | grep -Ev "^($2)$" || true)
  if [ -n "$bad" ]; then echo "check-imports: $1 must not import: $bad" >&2; exit 1; fi
}
allow runtime       '^$'
allow scheduler     '^$'
allow cosocket      'runtime|scheduler'
allow broker        'runtime'
allow broker/client 'runtime'
allow broker/smqjs  '^$'
allow broker/smqlua 'runtime|scheduler|cosocket|broker'
allow lsp           'runtime|scheduler|cosocket|broker|broker/smqlua|broker/smqjs'
echo "check-imports: ok"
