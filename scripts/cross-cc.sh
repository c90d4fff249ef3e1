#!/usr/bin/env bash
# Makes sure the C compilers of the release targets work, for `make release-snapshot`
# (.goreleaser.yaml): Mailroom needs cgo (SQLite), so each target is built with its
# own C compiler and C library headers, as .goreleaser.yaml names them:
#   linux/amd64  x86_64-linux-gnu-gcc   (Debian: gcc on amd64; elsewhere gcc-x86-64-linux-gnu, libc6-dev-amd64-cross)
#   linux/arm64  aarch64-linux-gnu-gcc  (Debian: gcc on arm64; elsewhere gcc-aarch64-linux-gnu, libc6-dev-arm64-cross)
# A compiler that is missing, or cannot build a C program that includes the C
# library's headers, is installed from Debian's packages when we are root;
# otherwise it stops with what to do.
#
#   scripts/cross-cc.sh        check, install what is missing, say which compilers
set -euo pipefail

declare -A packages=(
	[x86_64-linux-gnu-gcc]="gcc-x86-64-linux-gnu libc6-dev-amd64-cross"
	[aarch64-linux-gnu-gcc]="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
)
# On a machine of the target's own architecture, gcc and libc6-dev provide it.
case $(uname -m) in
x86_64) packages[x86_64-linux-gnu-gcc]="gcc libc6-dev" ;;
aarch64) packages[aarch64-linux-gnu-gcc]="gcc libc6-dev" ;;
esac

# works says whether compiler cc builds a program against its C library, as cgo will.
works() {
	command -v "$1" >/dev/null &&
		printf '#include <stdio.h>\n#include <pthread.h>\nint main(void) { return 0; }\n' |
		"$1" -x c - -o /dev/null 2>/dev/null
}

missing=()
for cc in "${!packages[@]}"; do
	if ! works "$cc"; then
		read -ra more <<<"${packages[$cc]}"
		missing+=("${more[@]}")
	fi
done
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		echo "cross-cc.sh: the C compilers of the release targets are missing or incomplete; install Debian's" \
			"${missing[*]} (as root: apt-get install --no-install-recommends ${missing[*]})" >&2
		exit 1
	fi
	echo "cross-cc.sh: installing Debian's ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for cc in "${!packages[@]}"; do
	if ! works "$cc"; then
		echo "cross-cc.sh: $cc still cannot build a C program after installing ${packages[$cc]}" >&2
		exit 1
	fi
	echo "cross-cc.sh: $cc: $("$cc" --version | head -n 1)" >&2
done
