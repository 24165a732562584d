#!/bin/sh
# Renders the documentation to static HTML with pandoc:
#
#   scripts/build-docs.sh [out-dir]     (default: build/html)
#
# README.md becomes out/README.html (CHANGELOG.md likewise), docs/X.md out/docs/X.html (and so
# for docs/reference/ and docs/guides/), each page with its own table of contents.
# out/index.html lists every page with its sections; docs/reference/, docs/guides/ and
# examples/ get an index.html of their own, so that links to those directories work; the
# examples and the images under docs/ are copied.
# Links to .md pages are rewritten to the .html pages (scripts/docs/links.lua), and
# scripts/check-docs-links.py checks the result.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/html}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
command -v pandoc >/dev/null || { echo "build-docs: pandoc is not installed"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tab=$(printf '\t')

# up DEPTH: the relative path from a page DEPTH directories down back to out/.
up() {
  n=$1 p=""
  while [ "$n" -gt 0 ]; do p="../$p"; n=$((n - 1)); done
  printf '%s' "$p"
}

# render SRC DEST DEPTH [HEADINGS [notoc]]: one Markdown file to one HTML page, DEPTH directories
# below out/; its headings are written to HEADINGS when given.
render() {
  src=$1 dest=$2 depth=$3 headings=${4:-} notoc=${5:-}
  back=$(up "$depth")
  mkdir -p "$(dirname "$dest")"
  printf '<nav class="top"><a href="%sindex.html">uvsocket documentation</a> &middot; ' \
    "$back" >"$work/nav.html"
  printf '<a href="%sREADME.html">README</a></nav>\n' "$back" >>"$work/nav.html"
  toc="--toc --toc-depth=3"
  if [ -n "$notoc" ]; then toc=""; fi
  # shellcheck disable=SC2086  # $toc is two options or none
  UVS_DOCS_HEADINGS=$headings pandoc -f gfm -t html5 --standalone $toc \
    --lua-filter scripts/docs/links.lua --css "${back}style.css" \
    --include-before-body "$work/nav.html" -o "$dest" "$src"
}

# title_of MD: the text of the first level-1 heading.
title_of() {
  sed -n 's/^# //p' "$1" | head -n 1
}

# Every page, in the order of the contents page: one section per group.
group_files() {
  case $1 in
    overview) printf "%s\n" README.md CHANGELOG.md ;;
    guides) ls docs/guides/*.md 2>/dev/null || true ;;
    docs) ls docs/*.md ;;
    reference) ls docs/reference/*.md ;;
  esac
}
group_title() {
  case $1 in
    overview) echo "Overview" ;;
    guides) echo "Guides" ;;
    docs) echo "The runtime, compatibility, installation, performance" ;;
    reference) echo "Reference" ;;
  esac
}

index=$work/index.md
{
  echo "# uvsocket documentation"
  echo
  echo "LuaSocket 3.1's API for Lua 5.4 on libuv, with a coroutine task runtime built in."
  echo "Every page, with its sections; each page also has its own table of contents."
} >"$index"
count=0
for group in overview guides docs reference; do
  files=$(group_files $group)
  [ -n "$files" ] || continue
  printf '\n## %s\n\n' "$(group_title $group)" >>"$index"
  for md in $files; do
    html=${md%.md}.html
    depth=$(printf '%s' "$md" | tr -cd / | wc -c)
    render "$md" "$out/$html" "$depth" "$work/headings"
    count=$((count + 1))
    printf -- '- [%s](%s)\n' "$(title_of "$md")" "$html" >>"$index"
    while IFS="$tab" read -r level id text; do
      if [ "$level" = 2 ]; then printf -- '  - [%s](%s#%s)\n' "$text" "$html" "$id" >>"$index"; fi
    done <"$work/headings"
  done
done

# A directory's index: its pages (or files) with their titles, rendered like any page.
dir_index() {
  dir=$1 title=$2
  shift 2
  {
    printf '# %s\n\n' "$title"
    for f in "$@"; do
      printf -- '- [%s](%s): %s\n' "${f##*/}" "${f##*/}" "$(describe "$f")"
    done
  } >"$work/dir.md"
  depth=$(printf '%s/' "$dir" | tr -cd / | wc -c)
  render "$work/dir.md" "$out/$dir/index.html" "$depth" "" notoc
}
# describe FILE: a page's title, or the first comment line of a Lua program.
describe() {
  case $1 in
    *.md) title_of "$1" ;;
    *.lua) sed -n '1s/^-- [^:]*: //p' "$1" ;;
  esac
}

dir_index docs/reference "Reference" $(ls docs/reference/*.md)
if ls docs/guides/*.md >/dev/null 2>&1; then
  dir_index docs/guides "Guides" $(ls docs/guides/*.md)
fi
# The index pages list the .md names; their links are rewritten to .html like any other.
mkdir -p "$out/examples"
cp examples/*.lua "$out/examples/"
dir_index examples "Examples" $(ls examples/*.lua)

for f in docs/*; do
  case $f in *.md) ;; *) [ -f "$f" ] && cp "$f" "$out/docs/" ;; esac
done
cp scripts/docs/style.css "$out/style.css"
render "$index" "$out/index.html" 0 "" notoc
echo "build-docs: $count pages in $out (index.html)"
