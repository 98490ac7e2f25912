#!/usr/bin/env bash
# Build the zonnewijk-gateway Debian package from the source tree: `make deb`.
#
#   packaging/build-deb.sh [OUT_DIR]          (default dist/)
#   VERSION=0.2.0-1 packaging/build-deb.sh    (default: pyproject's version + "-1")
#
# The application lives in its own virtual environment, /opt/zonnewijk-gateway/venv, made with
# Debian's python3 (3.11 on Bookworm) and only the gateway's dependencies; the package adds
# /usr/bin/zonnewijk-gateway, the systemd unit, a journald size limit, and maintainer scripts
# that create the system user and directories (safe to run again).
#
# Reproducible: file times are clamped to SOURCE_DATE_EPOCH (default: the last commit's time),
# no byte code is shipped (Python compiles on first use), pip's record of the build path is
# dropped, dpkg-deb sorts and stamps the archive itself. Two builds of one commit with the same
# wheels give the same bytes (tests/packaging/test_deb.py checks). The package is built for the
# machine's architecture (pydantic-core and rpds-py are compiled wheels): run the target on an
# arm64 or armhf Pi, or in such a chroot, for the Pis.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
python=${PYTHON:-/usr/bin/python3.11}
pyversion=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -1)
version=${VERSION:-$pyversion-1}
arch=$(dpkg --print-architecture)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
export PYTHONHASHSEED=0 PIP_DISABLE_PIP_VERSION_CHECK=1

"$python" -c 'import venv, ensurepip' 2>/dev/null || { echo "needs python3.11-venv" >&2; exit 1; }
work=$(mktemp -d /tmp/zw-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
venv=/opt/zonnewijk-gateway/venv

# 1. the wheel of this tree (gateway code, wire format, profiles as data files)
"$python" -m venv "$work/build-env"
"$work/build-env/bin/pip" install -q build >/dev/null
(cd "$root" && "$work/build-env/bin/python" -m build -q --wheel --outdir "$work/wheel" . >/dev/null)
wheel=$(ls "$work"/wheel/zonnewijk-*.whl)

# 2. the venv at its staging place, then moved under /opt in the package
"$python" -m venv --without-pip "$stage$venv"
"$work/build-env/bin/pip" --python "$stage$venv/bin/python" install -q --no-compile \
    --no-warn-script-location "$wheel[gateway]" >/dev/null
# the gateway extra only: the server side's modules are in the wheel but never imported
"$stage$venv/bin/python" -m pip --version >/dev/null 2>&1 && "$stage$venv/bin/python" -m pip uninstall -y -q pip || true
find "$stage$venv" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$stage$venv" -name direct_url.json -delete
rm -rf "$stage$venv/lib/python3"*/site-packages/collector "$stage$venv/bin/zonnewijk"
# scripts name the staging path: point them at the installed one
grep -rlI "$stage" "$stage$venv" | while read -r f; do sed -i "s#$stage##g" "$f"; done
# ... and the wheels' RECORD files list those scripts' hashes: recompute them
"$python" - "$stage$venv" <<'PY'
import base64, csv, hashlib, io, pathlib, sys
venv = pathlib.Path(sys.argv[1])
for record in venv.glob("lib/python3*/site-packages/*.dist-info/RECORD"):
    site = record.parent.parent
    rows = []
    for name, digest, size in csv.reader(io.StringIO(record.read_text())):
        path = (site / name).resolve() if not name.startswith("/") else pathlib.Path(name)
        if digest and not path.exists():
            continue  # removed above (the server's modules and command)
        if digest and path.is_file():
            data = path.read_bytes()
            digest = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            size = str(len(data))
        rows.append((name, digest, size))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    record.write_text(out.getvalue())
PY
"$work/build-env/bin/pip" --python "$stage$venv/bin/python" freeze --exclude-editable \
    | sort > "$stage/opt/zonnewijk-gateway/requirements.lock"
echo "$version" > "$stage/opt/zonnewijk-gateway/PACKAGE_VERSION"

# 3. the rest of the file system
install -D -m 0644 "$here/debian/zonnewijk-gateway.service" "$stage/lib/systemd/system/zonnewijk-gateway.service"
for unit in zonnewijk-gateway-rollback.service zonnewijk-gateway-mark-good.service zonnewijk-gateway-mark-good.timer; do
    install -D -m 0644 "$here/debian/$unit" "$stage/lib/systemd/system/$unit"
done
install -D -m 0755 "$here/debian/rollback" "$stage/usr/lib/zonnewijk-gateway/rollback"
install -D -m 0644 "$here/debian/journald.conf" "$stage/usr/lib/systemd/journald.conf.d/zonnewijk-gateway.conf"
install -d "$stage/usr/bin"
ln -s "$venv/bin/zonnewijk-gateway" "$stage/usr/bin/zonnewijk-gateway"
install -D -m 0644 "$root/docs/gateway-install.md" "$stage/usr/share/doc/zonnewijk-gateway/gateway-install.md"
install -D -m 0644 "$root/config/gateway.example.yaml" "$stage/usr/share/doc/zonnewijk-gateway/gateway.example.yaml"

# 4. control files
install -d "$stage/DEBIAN"
for script in postinst prerm postrm; do install -m 0755 "$here/debian/$script" "$stage/DEBIAN/$script"; done
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: zonnewijk-gateway
Version: $version
Architecture: $arch
Maintainer: Zonnewijk cooperative <beheer@zonnewijk.invalid>
Installed-Size: $size
Depends: python3.11, passwd
Recommends: systemd, systemd-timesyncd
Section: misc
Priority: optional
Homepage: https://zonnewijk.invalid
Description: Zonnewijk gateway: inverter readings to the cooperative's broker
 Reads a member's inverters over Modbus TCP or RTU, keeps every reading in a local
 spool until the broker acknowledged it, and takes its configuration from the
 cooperative's server. Enrol a new Pi with: zonnewijk-gateway enrol URL CODE
EOF
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's#^\./##' | LC_ALL=C sort \
    | xargs -d '\n' md5sum > DEBIAN/md5sums)
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb="$out/zonnewijk-gateway_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
