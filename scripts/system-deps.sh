#!/usr/bin/env bash
# Installs the system tools that the test suite and benchmarks use (Debian packages), once.
set -euo pipefail
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
# the console's browser tests drive Debian's Chromium through Playwright
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ]; then SUDO=sudo; else SUDO=; fi
echo "installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
