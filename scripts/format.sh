#!/bin/sh
# Formats the C and C++ sources with the repository's .clang-format, or with --check lists the
# files that differ from it and fails (CI runs the check).
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files 'src/*.cpp' 'src/*.hpp' 'src/*.c' 'src/*.h' 'spec/cpp/*.cpp' 'fuzz/*.cpp' \
  'fuzz/*.hpp' 'bench/*.c' 'bench/*.h')
if [ "${1:-}" = "--check" ]; then
  bad=""
  for f in $files; do
    clang-format --style=file "$f" | cmp -s - "$f" || bad="$bad $f"
  done
  if [ -n "$bad" ]; then
    echo "not formatted (run scripts/format.sh):$bad"
    exit 1
  fi
  echo "format: $(echo "$files" | wc -w) files match .clang-format"
else
  # shellcheck disable=SC2086  # file names without spaces
  clang-format --style=file -i $files
fi
