#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine (as root or with sudo):
#   ./hotline.sh up     install what is missing, then bring the whole hotline up
#   ./hotline.sh test   install what is missing, then lint (ruff, import-linter) and run every test
#   ./hotline.sh test --quick   the unit and store tests on SQLite only (no Asterisk, no PostgreSQL)
#   ./hotline.sh cluster up|status|drain NODE|undrain NODE|down   the scale-out (config.yaml's
#                       cluster: section): Kamailio, the Asterisk nodes, HAProxy, PostgreSQL
# Both are idempotent: a second run installs nothing and reuses the Asterisk root
# cached in ~/.cache/hotline and the wheels in pip's cache.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing Debian packages: ${missing[*]}"
        $SUDO apt-get update -q
        $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

system_packages() {
    # espeak-ng: the prompts' voice (pyttsx3 drives it); sox: converts prompts to 8 kHz;
    # debootstrap: installs Debian's Asterisk 22 into its own root when none is installed.
    apt_install espeak-ng libespeak-ng1 sox debootstrap util-linux
    if { [ "${1:-}" = "test" ] || [ "${1:-}" = "cluster" ]; } \
        && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
        apt_install postgresql  # a real server: the store's PostgreSQL tests, the cluster's store
    fi
    if [ "${1:-}" = "cluster" ]; then
        cluster_programs
    fi
    if [ "${1:-}" = "test" ] || [ "${1:-}" = "quick" ]; then
        # the console's browser tests: Debian's headless Chromium (driven by Playwright)
        # and a CJK font so the screenshots show the Chinese pages readably
        apt_install chromium fonts-noto-cjk
    fi
    if [ "${1:-}" = "test" ]; then
        # sip-tester (SIPp): the capacity test's citizens are real SIP phones;
        # faketime: the quick tests run again 400 days ahead, so no date in a test expires
        apt_install sip-tester faketime
        # the scale-out's SIP front and FastAGI balancer (issue 22): their configs are
        # rendered and checked by the programs themselves (kamailio -c, haproxy -c)
        cluster_programs
    fi
}

cluster_programs() {
    # the hotline runs its own Kamailio and HAProxy with rendered configs: the system
    # services Debian's packages start (Kamailio on *:5060) are stopped and disabled,
    # but only when this run installed them
    local fresh=()
    for pkg in kamailio haproxy; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || fresh+=("$pkg")
    done
    apt_install kamailio kamailio-websocket-modules haproxy
    if [ ${#fresh[@]} -gt 0 ] && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now "${fresh[@]}" >/dev/null 2>&1 || true
    fi
}

python_env() {
    if [ ! -x .venv/bin/python ]; then
        say "creating .venv"
        python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; python3 -m venv .venv; }
    fi
    local stamp=.venv/.hotline-installed want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing the hotline and its Python dependencies into .venv"
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -e '.[test]'
        echo "$want" > "$stamp"
    fi
}

case "${1:-}" in
    up)
        system_packages up
        python_env
        shift
        exec .venv/bin/hotline up "$@"
        ;;
    cluster)
        shift
        system_packages cluster
        python_env
        exec .venv/bin/hotline cluster "$@"
        ;;
    test)
        shift
        if [ "${1:-}" = "--quick" ]; then
            # unit + store on SQLite, three workers: no Asterisk, no PostgreSQL (about 2 minutes)
            shift
            system_packages quick
            python_env
            say "ruff"
            .venv/bin/ruff check .
            say "import-linter (the floors of the architecture)"
            .venv/bin/lint-imports --no-cache
            say "pytest --quick: unit and store tests on SQLite"
            exec .venv/bin/pytest -n 3 -m "not asterisk and not postgres" "$@"
        fi
        system_packages test
        python_env
        say "provisioning the local Asterisk (cached after the first run)"
        .venv/bin/hotline asterisk provision
        say "ruff"
        .venv/bin/ruff check .
        say "import-linter (the floors of the architecture)"
        .venv/bin/lint-imports --no-cache
        if [ $# -gt 0 ]; then  # a chosen subset: as asked, in one process
            exec .venv/bin/pytest "$@"
        fi
        # a missing server fails the full run instead of skipping its tests
        export HOTLINE_TESTS_REQUIRE_ALL=1
        say "pytest: every test, three workers (each its own Asterisk), in a random order"
        .venv/bin/pytest -n 3 --dist loadfile --durations=25
        say "pytest under faketime, 400 days ahead: no date in a test expires"
        # (the wall clock only: see tests/support/faketime/sitecustomize.py for why)
        FAKETIME_DONT_FAKE_MONOTONIC=1 PYTHONPATH="$PWD/tests/support/faketime" \
            faketime -f '+400d' \
            .venv/bin/pytest -q -n 2 -m "not asterisk and not postgres" -p no:cacheprovider --durations=15
        ;;
    *)
        echo "usage: $0 up|test|cluster [extra arguments]" >&2
        exit 64
        ;;
esac
