#!/bin/sh
# tests/scripts/install.sh - `make install PREFIX=...` into a temporary
# prefix; a program that embeds the engine and one that only reads views
# build against the installed headers through pkg-config, and the reader
# side links neither liburing nor jemalloc; the man pages are installed.
# Runtime library path: the programs built from `pkg-config --libs` alone
# (no -Wl,-rpath of their own, no LD_LIBRARY_PATH) run, since the .pc files
# of a prefix the loader does not search carry the rpath; the build tree has
# the soname files (libX.so.0 real, libX.so a link to it), so a program
# linked with -Lbuild -lcqrs_client -Wl,-rpath,$PWD/build runs too.
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
unset LD_LIBRARY_PATH
cc -std=c11 -Wall -Werror -o "$tmp/engine" "$tmp/engine.c" $(pkg-config --cflags --libs cqrs)
cc -std=c11 -Wall -Werror -o "$tmp/reader" "$tmp/reader.c" $(pkg-config --cflags --libs cqrs_client)
"$tmp/engine"
"$tmp/reader"
ldd "$tmp/reader" | grep -q "libcqrs_client.so.0 => $tmp/prefix/lib/libcqrs_client.so.0" ||
	{ ldd "$tmp/reader"; echo "reader does not load the installed libcqrs_client.so.0"; exit 1; }
[ -L "$tmp/prefix/lib/libcqrs.so" ] && [ -f "$tmp/prefix/lib/libcqrs.so.0" ] && [ ! -L "$tmp/prefix/lib/libcqrs.so.0" ]
# the standard prefixes get no rpath (the loader searches them)
[ -z "$(make -s --no-print-directory BUILD="$BUILD" PREFIX=/usr/local -f Makefile -f - print-pc-rpath <<'MK'
print-pc-rpath: ; @echo '$(PC_RPATH)'
MK
)" ] || { echo "PREFIX=/usr/local would get an rpath"; exit 1; }
# the build tree: soname files, linked the way a user would
for l in libcqrs libcqrs_client; do
	[ -L "$BUILD/$l.so" ] && [ "$(readlink "$BUILD/$l.so")" = "$l.so.0" ] && [ -f "$BUILD/$l.so.0" ] &&
		[ ! -L "$BUILD/$l.so.0" ] || { ls -l "$BUILD"/$l.so*; echo "$BUILD/$l.so is not a link to $l.so.0"; exit 1; }
done
b=$(cd "$BUILD" && pwd)
cc -std=c11 -Wall -Werror -Iinclude -o "$tmp/reader_bt" "$tmp/reader.c" -L"$b" -lcqrs_client -Wl,-rpath,"$b"
"$tmp/reader_bt" >/dev/null
if ldd "$tmp/reader" | grep -E 'liburing|jemalloc'; then echo "reader links engine-only libraries"; exit 1; fi
"$tmp/prefix/bin/cqrs" --help >/dev/null
[ -f "$tmp/prefix/share/man/man1/cqrs.1" ] && [ -f "$tmp/prefix/share/man/man1/cqrs-orders.1" ]
echo "install: headers, libraries, pkg-config files (rpath: $(pkg-config --libs cqrs_client)) and the cqrs tool work from $tmp/prefix; the build tree's soname links work"
