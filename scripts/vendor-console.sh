#!/usr/bin/env bash
# Copies the console's JavaScript libraries from the npm registry into the package, with their
# licences. The copies are committed: installing or running Stackyard needs no Node.js.
# Run it again (and commit the result) to move to other versions.
set -euo pipefail
HTMX=${HTMX:-2.0.11}
UPLOT=${UPLOT:-1.6.32}
dest="$(cd "$(dirname "$0")/.." && pwd)/src/stackyard/console/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "htmx.org@$HTMX" "uplot@$UPLOT" >/dev/null
mkdir htmx uplot
tar xzf "htmx.org-$HTMX.tgz" -C htmx
tar xzf "uplot-$UPLOT.tgz" -C uplot
mkdir -p "$dest"
cp htmx/package/dist/htmx.min.js "$dest/htmx.min.js"
cp htmx/package/LICENSE "$dest/htmx.LICENSE"
cp uplot/package/dist/uPlot.iife.min.js "$dest/uPlot.iife.min.js"
cp uplot/package/dist/uPlot.min.css "$dest/uPlot.min.css"
cp uplot/package/LICENSE "$dest/uPlot.LICENSE"
printf 'htmx.org %s\nuplot %s\n' "$HTMX" "$UPLOT" > "$dest/VERSIONS"
echo "vendored htmx $HTMX and uPlot $UPLOT into $dest"
