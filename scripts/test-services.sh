#!/usr/bin/env bash
# Make sure the services the test suite needs are present on this machine.
#  - etcd (Debian's etcd-server) under the real Kubernetes CRD API server of ../shared/k8s.
# Installs with apt when missing and running as root (CI runs as root); otherwise explains.
set -euo pipefail

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)

if ((${#need_apt[@]})); then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-services: installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "test-services: missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]}) or the Kubernetes tests will be skipped" >&2
  fi
fi

if [ -n "${BOBRAPET_TEST_APISERVER:-}" ] && [ ! -x "${BOBRAPET_TEST_APISERVER}" ]; then
  echo "test-services: BOBRAPET_TEST_APISERVER=${BOBRAPET_TEST_APISERVER} is not an executable; Kubernetes tests will be skipped" >&2
fi
