#!/usr/bin/env bash
# Makes sure Chromium is installed for the operator console's browser test
# (web/browser_test.go, built with -tags browser). It looks for $CHROMIUM_PATH,
# default /usr/bin/chromium; if that is missing and we are root, it installs
# Debian's chromium package; otherwise it stops with what to do.
#
#   scripts/browser.sh          check, install if needed, print the path
set -euo pipefail
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}

if [[ ! -x $chromium ]]; then
	if [[ $chromium != /usr/bin/chromium ]]; then
		echo "browser.sh: CHROMIUM_PATH=$chromium is not an executable file" >&2
		exit 1
	fi
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		echo "browser.sh: $chromium is missing; install Debian's chromium package" \
			"(as root: apt-get install --no-install-recommends chromium) or set CHROMIUM_PATH" >&2
		exit 1
	fi
	echo "browser.sh: $chromium is missing; installing Debian's chromium package" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends chromium
fi
# Debian's launcher script prints a harmless shell error on some machines (its
# /etc/chromium.d checks); only whether Chromium runs matters here.
if ! version=$("$chromium" --version 2>/dev/null); then
	echo "browser.sh: $chromium does not run: $chromium --version failed" >&2
	exit 1
fi
echo "browser.sh: $version" >&2
echo "$chromium"
