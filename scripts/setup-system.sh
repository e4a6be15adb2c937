#!/usr/bin/env bash
# Install the real services golive's tests run against, when missing, and start dockerd.
# Idempotent; does nothing it does not need to. Needs root for apt-get (skipped otherwise).
set -euo pipefail

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || command -v initdb >/dev/null || need+=(postgresql)
command -v dockerd >/dev/null || need+=(docker.io)
command -v apache2 >/dev/null || [ -x /usr/sbin/apache2 ] || need+=(apache2)
command -v ab >/dev/null || need+=(apache2-utils)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v sqlite3 >/dev/null || need+=(sqlite3)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
  else
    echo "setup: missing ${need[*]} and not root: install them with apt-get" >&2
  fi
fi

if command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: starting dockerd"
    nohup dockerd >/tmp/golive-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /tmp/golive-dockerd.log" >&2; tail -5 /tmp/golive-dockerd.log >&2; }
  fi
fi
exit 0
