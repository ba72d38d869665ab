#!/bin/sh
# tests/scripts/install.sh - `make install PREFIX=...` into a temporary
# prefix; a program that embeds the engine and one that only reads views
# build against the installed headers through pkg-config, and the reader
# side links neither liburing nor jemalloc; the man pages are installed.
set -eu
BUILD=${BUILD:-build}
tmp=$(mktemp -d /tmp/cqrs-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
make -s BUILD="$BUILD" install PREFIX="$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cat > "$tmp/engine.c" <<'C'
#include <cqrs.h>
#include <stdio.h>
int main(void) { cqrs_config c; cqrs_config_init(&c); printf("%s\n", cqrs_strerror(CQRS_EREJECTED)); return c.durability != CQRS_DURABILITY_BATCH; }
C
cat > "$tmp/reader.c" <<'C'
#include <cqrs_view.h>
#include <cqrs_client.h>
#include <stdio.h>
int main(void) { cqrs_view *v; int rc = cqrs_view_open("no_such_engine_here", "v", &v); printf("%s\n", cqrs_strerror(rc)); return rc == 0; }
C
cc -std=c11 -Wall -Werror -o "$tmp/engine" "$tmp/engine.c" $(pkg-config --cflags --libs cqrs) -Wl,-rpath,"$tmp/prefix/lib"
cc -std=c11 -Wall -Werror -o "$tmp/reader" "$tmp/reader.c" $(pkg-config --cflags --libs cqrs_client) -Wl,-rpath,"$tmp/prefix/lib"
"$tmp/engine"
"$tmp/reader"
if ldd "$tmp/reader" | grep -E 'liburing|jemalloc'; then echo "reader links engine-only libraries"; exit 1; fi
"$tmp/prefix/bin/cqrs" --help >/dev/null
[ -f "$tmp/prefix/share/man/man1/cqrs.1" ] && [ -f "$tmp/prefix/share/man/man1/cqrs-orders.1" ]
echo "install: headers, libraries, pkg-config files and the cqrs tool work from $tmp/prefix"
