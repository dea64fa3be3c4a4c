#!/usr/bin/env bash
# Build the Debian package from the bundle: dist/ser_<version>_<arch>.deb
#   bash packaging/build_bundle.sh && bash packaging/build_deb.sh
# SER_DIST / SER_BUILD as for build_bundle.sh.
# Installs the bundle under /opt/ser (not /opt itself: no package owns it), launchers /usr/bin/ser-app and /usr/bin/ser,
# a freedesktop entry and a hicolor icon. No maintainer scripts: the menu and icon caches
# are refreshed by the desktop-file-utils / hicolor-icon-theme dpkg triggers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DIST="${SER_DIST:-dist}"  # where the bundle is and the .deb goes
BUNDLE="$DIST/ser"
if [[ ! -x "$BUNDLE/ser-app" ]]; then
  echo "error: $BUNDLE/ser-app not found: run bash packaging/build_bundle.sh first" >&2
  exit 1
fi
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)"
ARCH="$(dpkg --print-architecture)"
STAGE="${SER_BUILD:-build}/deb/ser_${VERSION}_${ARCH}"
OUT="$DIST/ser_${VERSION}_${ARCH}.deb"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
  "$STAGE/usr/share/icons/hicolor/256x256/apps" "$STAGE/usr/share/doc/ser"
cp -a "$BUNDLE" "$STAGE/opt/ser"
install -m 0755 packaging/debian/ser-app.sh "$STAGE/usr/bin/ser-app"
install -m 0755 packaging/debian/ser.sh "$STAGE/usr/bin/ser"
install -m 0644 packaging/ser-app.desktop "$STAGE/usr/share/applications/ser-app.desktop"
# The app icon drawn by tools/make_icon.py (256x256), also the window icon.
install -m 0644 desktop_app/resources/ser-app.png "$STAGE/usr/share/icons/hicolor/256x256/apps/ser-app.png"
install -m 0644 packaging/debian/copyright "$STAGE/usr/share/doc/ser/copyright"
chmod -R u=rwX,go=rX "$STAGE/opt/ser"
chmod 0755 "$STAGE/opt/ser/ser-app"
INSTALLED_KB="$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)"
# The bundle carries libraries from the build host: require at least its glibc.
GLIBC="$(getconf GNU_LIBC_VERSION | cut -d' ' -f2)"
sed -e "s/@GLIBC@/$GLIBC/" -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@INSTALLED_SIZE@/$INSTALLED_KB/" \
  packaging/debian/control.in > "$STAGE/DEBIAN/control"
mkdir -p "$DIST"
# zstd: 6 s instead of 2 min for xz -6, 75 MB instead of 61 MB. dpkg reads it since 1.21.18
# (Debian 12, Ubuntu 21.10), and the bundle needs the build host's glibc anyway.
# The data archive is compressed below; here only the (small) control archive keeps level 1.
dpkg-deb --root-owner-group -Zzstd -z1 --build "$STAGE" "$OUT" > /dev/null
# dpkg-deb lists every folder of the stage, /opt itself too. No package owns /opt (base-files
# makes it), so the package would claim it and `dpkg -r ser` would say "directory '/opt' not empty
# so not removed" on every system with anything else in /opt. Take the ./opt/ entry out of the
# data archive and put the archive back in the .deb (an ar archive: debian-binary, control.tar.zst,
# data.tar.zst; `ar r` replaces the member in its place). /usr, /usr/share... stay: they are
# listed by many packages, as in every .deb.
DATA="$(mktemp -d)"
trap 'rm -rf "$DATA"' EXIT
dpkg-deb --fsys-tarfile "$OUT" > "$DATA/data.tar"
tar --delete --no-recursion -f "$DATA/data.tar" ./opt/
zstd -q -9 -T0 --rm "$DATA/data.tar" -o "$DATA/data.tar.zst"
OUT_ABS="$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"
(cd "$DATA" && ar rD "$OUT_ABS" data.tar.zst)
if dpkg-deb -c "$OUT" | awk '{print $6}' | grep -qx './opt/'; then
  echo "error: $OUT still lists ./opt/" >&2
  exit 1
fi
echo "deb: $OUT ($(du -h "$OUT" | cut -f1), installed ${INSTALLED_KB} KiB)"
