#!/usr/bin/env bash
# Makes sure Debian's headless Chromium is installed (for the browser tests); prints its path.
# Browsers are never downloaded at run time: Playwright drives this binary through executable_path.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for candidate in "${EVC_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        echo "$candidate"
        exit 0
    fi
done
apt_install chromium fonts-dejavu-core
echo /usr/bin/chromium
