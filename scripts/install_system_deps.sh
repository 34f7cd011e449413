#!/usr/bin/env bash
# Installs what the tests need from Debian: `docker-registry` (CNCF distribution 2.8), the
# real OCI registry the pull/push tests run on 127.0.0.1 with a config of their own; `hey`;
# `chromium` for the browser test; and `prometheus`, which the metrics test runs. Idempotent.
# The registry's and Prometheus' own services would listen on all interfaces, so they are
# kept from starting and disabled wherever a service manager runs them.
set -euo pipefail

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# apt_install PACKAGE: install one Debian package quietly, without its recommendations.
apt_install() {
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "$1" > /dev/null
}

# install_without_service PACKAGE: install a package whose service would listen on all
# interfaces; policy-rc.d exit 101 keeps invoke-rc.d from starting it during the install.
install_without_service() {
    policy=/usr/sbin/policy-rc.d
    created_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" > /dev/null
        $sudo chmod +x "$policy"
        created_policy=1
    fi
    apt_install "$1"
    if [ -n "$created_policy" ]; then $sudo rm -f "$policy"; fi
}

# disable_service NAME: never leave a package's all-interfaces service enabled or running.
disable_service() {
    if command -v systemctl > /dev/null && systemctl is-enabled "$1.service" \
            > /dev/null 2>&1; then
        if [ -d /run/systemd/system ]; then
            $sudo systemctl stop "$1.service" > /dev/null 2>&1 || true
        fi
        $sudo systemctl disable "$1.service" > /dev/null 2>&1 || true
    fi
}

[ -x /usr/bin/docker-registry ] || install_without_service docker-registry
disable_service docker-registry
/usr/bin/docker-registry --version

# `hey`, the HTTP load generator that bench/load_test.py and tests/integration/test_load.py
# drive against the server's endpoints.
command -v hey > /dev/null || apt_install hey
command -v hey

# `chromium`, headless, for tests/integration/test_js_browser.py (the JavaScript client run
# in a real browser page) and tests/integration/test_ui_browser.py (the chat page at /ui,
# driven by Playwright, which uses this Chromium and downloads none). Large (about 25
# packages), but a one-time install of under a minute.
command -v chromium > /dev/null || apt_install chromium
# (Debian's wrapper script warns on stderr about the memory size; only the version matters.)
chromium --version 2> /dev/null

# `prometheus`, which tests/integration/test_prometheus.py starts on a loopback port with a
# config of its own, scraping a test server. The package's service would listen on all
# interfaces (:9090): kept from starting, and disabled, as the registry's.
command -v prometheus > /dev/null || install_without_service prometheus
disable_service prometheus
prometheus --version 2>&1 | head -1

# `iproute2` (`ip netns`, `ss`): tests/cluster runs its Ray nodes and server inside a
# network namespace holding only a loopback interface, so Ray reaches no other address.
command -v ip > /dev/null && command -v ss > /dev/null || apt_install iproute2
ip -V
# `g++`, which builds llama.cpp's quantizer once (`pasture.engines.quantizer`, for
# `create --quantize`; tests/integration/test_quantize.py) and ggml's RPC backend once
# (`pasture.rpc.library`, for `pasture worker`; tests/integration/test_rpc_split.py).
command -v g++ > /dev/null || apt_install g++
g++ --version | head -1
