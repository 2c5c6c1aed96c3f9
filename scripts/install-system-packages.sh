#!/usr/bin/env bash
# Debian packages the QEMU board and the image tests need, installed only when missing; libsystemd-dev
# and pkg-config build systemd-python, which the real PDUDaemon the power tests start depends on.
# --no-install-recommends keeps it to about 18 MB of downloads instead of ~160 MB.
set -euo pipefail
packages=(qemu-system-arm u-boot-qemu mtools dosfstools kmod fdisk apt dpkg debian-archive-keyring
          libsystemd-dev pkg-config)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "install these Debian packages (or your system's equivalents): ${missing[*]}" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
