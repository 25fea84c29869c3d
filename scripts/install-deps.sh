#!/usr/bin/env bash
# Installs the Debian packages the tests need (a real TPM simulator and tools, a headless
# browser, openssl, curl and socat as outside clients, promtool to check every /metrics,
# PostgreSQL and NATS), skips what is already installed, then starts PostgreSQL and NATS when
# they are not running (scripts/start-services.sh).
set -euo pipefail
PKGS=(swtpm swtpm-tools tpm2-tools chromium openssl curl stunnel4 socat prometheus postgresql nats-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "test dependencies present: ${PKGS[*]}"
"$(dirname "$0")/start-services.sh"
