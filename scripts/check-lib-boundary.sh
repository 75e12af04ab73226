#!/bin/sh
# check-lib-boundary.sh BUILD -- the library boundary, checked (make lint):
#   1. app/ includes no header of governor/ but governor.h (the only
#      installed one): no util.h, no module headers;
#   2. governor/governor.h is self-contained: it includes system headers only
#      and compiles alone, from a directory that holds nothing else;
#   3. libgovernor.so.0 exports only gov_* symbols (nm -D --defined-only),
#      and has the soname libgovernor.so.0.
# Exits 1 with one line per violation.
set -eu
build=${1:-build}
cc=${CC:-cc}
fail=0

# 1. app/ -> governor/ includes
for f in app/*.c app/*.h; do
    grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r line; do
        hdr=$(printf '%s\n' "$line" | sed 's/.*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/')
        base=${hdr##*/}
        if [ "$base" != governor.h ] && { [ -e "governor/$base" ] || [ "${hdr#governor/}" != "$hdr" ]; }; then
            echo "$f:${line%%:*}: includes \"$hdr\": app/ may include only governor.h of the library"
        fi
    done
done > "$build/.boundary-app.txt"
if [ -s "$build/.boundary-app.txt" ]; then
    cat "$build/.boundary-app.txt"
    fail=1
fi
rm -f "$build/.boundary-app.txt"

# 2. governor.h stands alone
if grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' governor/governor.h; then
    echo "governor/governor.h: includes a project header (it must be self-contained)"
    fail=1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp governor/governor.h "$tmp/"
printf '#include <governor.h>\nint main(void) { return gov_level_name(GOV_LEVEL_NORMAL)[0] == 0; }\n' > "$tmp/t.c"
if ! $cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$tmp" "$tmp/t.c"; then
    echo "governor/governor.h: does not compile on its own (-std=c11 -pedantic)"
    fail=1
fi

# 3. exports and soname of the shared library
so="$build/libgovernor.so.0"
if [ ! -f "$so" ]; then
    echo "$so: missing (make $so)"
    fail=1
else
    bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[A-Z]$/ && $3 !~ /^gov_/ && $3 !~ /^GOVERNOR_/ {print $3}')
    if [ -n "$bad" ]; then
        echo "$so: exports symbols that do not start with gov_:"
        printf '  %s\n' $bad
        fail=1
    fi
    n=$(nm -D --defined-only "$so" | awk '$3 ~ /^gov_/' | wc -l)
    if [ "$n" -eq 0 ]; then
        echo "$so: exports no gov_ symbol"
        fail=1
    fi
    soname=$(objdump -p "$so" | awk '$1 == "SONAME" {print $2}')
    if [ "$soname" != libgovernor.so.0 ]; then
        echo "$so: soname is '$soname', not libgovernor.so.0"
        fail=1
    fi
fi
[ $fail -eq 0 ] && echo "lib boundary: app/ includes only governor.h, governor.h stands alone, $so exports $n gov_* symbols"
exit $fail
