#!/bin/sh
# Make sure Debian's Chromium (and its driver) are installed, for the browser tests (issue 10).
#
# The browser tests drive /usr/bin/chromium through Playwright; no test tool ever downloads a browser.
# Exit status: 0 = chromium is there (already, or installed now);
#              3 = it cannot be installed here (no apt-get, not root, apt-get failing -- usually no network):
#                  the tests will skip, and this script says why on stderr (SVD_LAB_REQUIRE_BROWSER=1 in the
#                  environment of pytest turns that skip into a failure, for CI).
set -u

CHROMIUM=${SVD_LAB_CHROMIUM:-/usr/bin/chromium}
PACKAGES="chromium chromium-driver"

if [ -x "$CHROMIUM" ] && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi

cannot() {
    echo "ensure_chromium: cannot install $PACKAGES: $1." >&2
    echo "ensure_chromium: install them yourself (as root: apt-get install $PACKAGES); the browser tests will be skipped." >&2
    exit 3
}

command -v apt-get >/dev/null 2>&1 || cannot "apt-get not found (not a Debian/Ubuntu system)"

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        cannot "not root and no password-less sudo"
    fi
fi

echo "ensure_chromium: installing $PACKAGES with apt-get (about a minute) ..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -q >&2; then
    cannot "apt-get update failed (no network to the Debian mirrors?)"
fi
if ! $SUDO apt-get install -y -q --no-install-recommends $PACKAGES >&2; then
    cannot "apt-get install failed (no network to the Debian mirrors? see its messages above)"
fi
[ -x "$CHROMIUM" ] || cannot "$CHROMIUM is still missing after apt-get install"
"$CHROMIUM" --version >&2 || true
exit 0
