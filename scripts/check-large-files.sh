#!/usr/bin/env bash
# Fails when a tracked file is over 1 MB, except the fixtures listed here:
# build outputs and other large blobs belong in .gitignore, not in git.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=$((1024 * 1024))
ALLOWED=(
)
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  size=$(stat -c %s "$f")
  [ "$size" -le "$LIMIT" ] && continue
  for a in "${ALLOWED[@]}"; do [ "$f" = "$a" ] && continue 2; done
  echo "tracked file over 1 MB: $f ($size bytes); ignore it or list it in scripts/check-large-files.sh" >&2
  bad=1
done < <(git ls-files -z)
exit $bad
