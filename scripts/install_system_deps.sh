#!/usr/bin/env bash
# Installs what the tests need from Debian: `docker-registry` (CNCF distribution 2.8), the
# real OCI registry the pull/push tests run on 127.0.0.1 with a config of their own; `hey`;
# and `chromium` for the browser test. Idempotent. The registry package's own service would
# listen on all interfaces (`addr: :5000`), so it is stopped and disabled wherever a service
# manager started it.
set -euo pipefail

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# apt_install PACKAGE: install one Debian package quietly, without its recommendations.
apt_install() {
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "$1" > /dev/null
}

if [ ! -x /usr/bin/docker-registry ]; then
    # policy-rc.d exit 101 keeps invoke-rc.d from starting the service during install.
    policy=/usr/sbin/policy-rc.d
    created_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" > /dev/null
        $sudo chmod +x "$policy"
        created_policy=1
    fi
    apt_install docker-registry
    if [ -n "$created_policy" ]; then $sudo rm -f "$policy"; fi
fi
# Never leave the package's all-interfaces service enabled or running.
if command -v systemctl > /dev/null && systemctl is-enabled docker-registry.service \
        > /dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then
        $sudo systemctl stop docker-registry.service > /dev/null 2>&1 || true
    fi
    $sudo systemctl disable docker-registry.service > /dev/null 2>&1 || true
fi
/usr/bin/docker-registry --version

# `hey`, the HTTP load generator that bench/load_test.py and tests/integration/test_load.py
# drive against the server's endpoints.
command -v hey > /dev/null || apt_install hey
command -v hey

# `chromium`, headless, for tests/integration/test_js_browser.py: the JavaScript client run
# in a real browser page. Large (about 25 packages), but a one-time install of under a minute.
command -v chromium > /dev/null || apt_install chromium
# (Debian's wrapper script warns on stderr about the memory size; only the version matters.)
chromium --version 2> /dev/null
