#!/usr/bin/env bash
# The console's third-party files, vendored from npm at pinned versions into
# web/static/vendor/ (committed, so that `go run . serve` needs no Node and no
# network). Each tarball is checked against the integrity npm publishes for it.
#
#   scripts/vendor-web.sh           fetch and write the files
#   scripts/vendor-web.sh --check   fetch and fail if the committed files differ
#
# To upgrade: change a version and its integrity (from
# https://registry.npmjs.org/<name>/<version>, field dist.integrity), run the
# script, look at the diff, commit.
set -euo pipefail

# name version integrity (sha512, base64) files to take from the package
PACKAGES=(
  "uplot 1.6.32 KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw== LICENSE dist/uPlot.iife.min.js dist/uPlot.min.css"
  "dompurify 3.5.0 LYC0ZkE8P1V42JsRYTwMdme/2ET8SpOc5AA2eOFjP/IadvRd2fwiT4TVz5vkfy0XUx12aS2UaRkTnfVPNOv9vw== LICENSE dist/purify.min.js"
)

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/web/static/vendor"
check=false
[[ "${1:-}" == "--check" ]] && check=true

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/vendor"
mkdir -p "$out"

for entry in "${PACKAGES[@]}"; do
  read -r name version integrity files <<<"$entry"
  tgz="$work/$name-$version.tgz"
  curl -fsSL --retry 3 -o "$tgz" "https://registry.npmjs.org/$name/-/$name-$version.tgz"
  got=$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)
  if [[ "$got" != "$integrity" ]]; then
    echo "vendor-web: $name $version: integrity sha512-$got, want sha512-$integrity" >&2
    exit 1
  fi
  mkdir -p "$work/$name" "$out/$name"
  tar -xzf "$tgz" -C "$work/$name"
  for f in $files; do
    # The console serves no source maps: the minified files' pointer to one
    # would be a 404 in every browser with its developer tools open.
    sed '/^\/\/# sourceMappingURL=/d' "$work/$name/package/$f" >"$out/$name/$(basename "$f")"
  done
  echo "$name $version" >"$out/$name/VERSION"
done

if $check; then
  if ! diff -r "$out" "$dest" >&2; then
    echo "vendor-web: web/static/vendor differs from the pinned npm packages; run scripts/vendor-web.sh" >&2
    exit 1
  fi
  echo "vendor-web: web/static/vendor matches the pinned npm packages"
else
  rm -rf "$dest"
  cp -r "$out" "$dest"
  echo "vendor-web: wrote $(find "$dest" -type f | wc -l) files to web/static/vendor"
fi
