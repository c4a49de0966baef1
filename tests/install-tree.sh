#!/usr/bin/env bash
# `make install` and `make uninstall` into a temporary DESTDIR, checked file by file.
#
# The binary is a stub unless BIN= names a prebuilt one: this tests the tree, not the program, so it
# needs no musl build. The dracut module and initramfs-tools files are expected exactly as they are in
# the source tree at the time of the run (the test passes with and without them).
# Prints `ok NAME` / `not ok NAME - reason` per check and a closing `N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Only the command line below decides the layout: no SBINDIR=... from the caller's environment.
unset SBINDIR MANDIR UNITDIR BASHCOMPDIR DRACUTDIR INITRAMFSDIR TARGET
export LC_ALL=C
MAKE=${MAKE:-make}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/dest
mkdir "$dest"
if [[ -z ${BIN:-} ]]; then
    BIN=$work/nvme-monitor
    printf '#!/bin/sh\necho stub nvme-monitor\n' >"$BIN"
    chmod 0600 "$BIN" # install must set the mode itself
fi

passed=0 failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok $1 - $2"; failed=$((failed + 1)); }

# Expected files: "MODE DEST-PATH SOURCE", one per line, for PREFIX=/usr.
expected() {
    echo "0755 /usr/sbin/nvme-monitor $BIN"
    echo "0644 /usr/share/man/man8/nvme-monitor.8 doc/nvme-monitor.8"
    echo "0644 /usr/share/bash-completion/completions/nvme-monitor completions/nvme-monitor.bash"
    echo "0644 /usr/lib/systemd/system/nvme-monitor.service systemd/nvme-monitor.service"
    local f mode
    if [[ -d dracut-module/59nvme-monitor ]]; then
        while IFS= read -r f; do
            if [[ -x $f ]]; then mode=0755; else mode=0644; fi
            echo "$mode /usr/lib/dracut/modules.d/${f#dracut-module/} $f"
        done < <(find dracut-module/59nvme-monitor -type f | sort)
    fi
    for f in dracut-module/*.conf; do
        [[ -f $f ]] && echo "0644 /usr/lib/dracut/dracut.conf.d/${f##*/} $f"
    done
    for f in initramfs-tools/hooks/* initramfs-tools/scripts/*/*; do
        [[ -f $f ]] && echo "0755 /usr/share/initramfs-tools/${f#initramfs-tools/} $f"
    done
    return 0
}

# Every expected file with its mode and contents, and nothing else.
check_tree() {
    local mode path src have why=
    while read -r mode path src; do
        if [[ ! -f $dest$path || -L $dest$path ]]; then
            why+=" missing $path;"
            continue
        fi
        have=$(stat -c %a "$dest$path")
        [[ 0$have == "$mode" ]] || why+=" $path has mode 0$have, want $mode;"
        cmp -s "$src" "$dest$path" || why+=" $path differs from $src;"
    done < <(expected)
    local extra
    extra=$(comm -13 <(expected | awk '{ print $2 }' | sort) \
        <(cd "$dest" && find . ! -type d | sed 's/^\.//' | sort) | tr '\n' ' ')
    [[ -z $extra ]] || why+=" unexpected: $extra;"
    if [[ -z $why ]]; then ok install-tree; else not_ok install-tree "${why# }"; fi
}

log=$work/make.log
if "$MAKE" --no-print-directory install DESTDIR="$dest" PREFIX=/usr BIN="$BIN" >"$log" 2>&1; then
    check_tree
else
    not_ok install-tree "make install failed: $(tail -n 3 "$log" | tr '\n' ' ')"
fi

if "$MAKE" --no-print-directory uninstall DESTDIR="$dest" PREFIX=/usr BIN="$BIN" >"$log" 2>&1; then
    left=$(cd "$dest" && find . ! -type d | sed 's/^\.//' | tr '\n' ' ')
    if [[ -z $left ]]; then ok uninstall-tree; else not_ok uninstall-tree "left behind: $left"; fi
else
    not_ok uninstall-tree "make uninstall failed: $(tail -n 3 "$log" | tr '\n' ' ')"
fi

# Every option of --help (the USAGE text in src/cli.rs) is completed and documented.
usage_options=$(sed -n '/^pub const USAGE/,/^";/p' src/cli.rs | grep -oE '(^|[ ,])--?[A-Za-z][a-z_-]*' |
    sed 's/^[ ,]*//' | sort -u)
missing_completion='' missing_man=''
for o in $usage_options; do
    grep -qE -- "(^|[ \"|(])$o([ \"|)]|$)" completions/nvme-monitor.bash || missing_completion+=" $o"
    grep -qF -- "${o//-/\\-}" doc/nvme-monitor.8 || missing_man+=" $o"
done
if [[ $(wc -w <<<"$usage_options") -lt 40 ]]; then
    not_ok options-covered "found only $(wc -w <<<"$usage_options") options in src/cli.rs USAGE"
elif [[ -n $missing_completion$missing_man ]]; then
    not_ok options-covered "completion lacks:${missing_completion:- none}; man page lacks:${missing_man:- none}"
elif ! bash -n completions/nvme-monitor.bash; then
    not_ok options-covered "completions/nvme-monitor.bash is not valid bash"
else
    ok options-covered
fi

if command -v groff >/dev/null; then
    warnings=$(groff -man -ww -z doc/nvme-monitor.8 2>&1)
    if [[ -z $warnings ]]; then ok man-renders; else not_ok man-renders "$warnings"; fi
else
    echo "# man-renders not run: groff is not installed (apt-get install groff-base)"
fi

echo "$passed passed, $failed failed"
((failed == 0))
