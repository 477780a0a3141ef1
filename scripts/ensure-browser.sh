#!/bin/sh
# The panel's browser tests drive Debian's chromium through Playwright (browser downloads are
# not possible here, so `playwright install` is never run). Installs it when missing.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is missing: run 'apt-get install -y chromium' as root" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
