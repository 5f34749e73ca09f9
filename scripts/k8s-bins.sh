#!/usr/bin/env bash
# k8s-bins.sh: build etcd, kube-apiserver and kube-controller-manager from the Go module proxy
# for the Kubernetes runtime's tests (internal/k8stest), no images and no kind. The binaries go
# to a version-keyed cache folder outside the repository, so only the first run on a machine
# pays for the build (about 7 minutes cold on 2 cores); later runs only check that they exist.
# The last line printed is that folder (what KUBEBUILDER_ASSETS / ARES_K8S_BINS point at).
#
#   scripts/k8s-bins.sh                      # build what is missing, print the folder
#   ARES_K8S_BINS=/some/dir scripts/k8s-bins.sh
#   K8S_VERSION=v1.37.2 ETCD_VERSION=v3.7.0 scripts/k8s-bins.sh
#
# etcd: go.etcd.io/etcd/server/v3 (its main package is the module root). kube-apiserver and
# kube-controller-manager: k8s.io/kubernetes required from a throw-away build module that
# replaces each of its staging modules (k8s.io/api, k8s.io/apimachinery, ...; read from the
# kubernetes go.mod) with the matching v0.x release.
set -euo pipefail

k8s_version=${K8S_VERSION:-v1.37.2}
etcd_version=${ETCD_VERSION:-v3.7.0}
cache=${ARES_K8S_BINS:-${XDG_CACHE_HOME:-$HOME/.cache}/ares/k8s-$k8s_version-etcd-$etcd_version}

say() { printf '[k8s-bins] %s\n' "$*" >&2; }

have() { [ -x "$cache/$1" ]; }

if have etcd && have kube-apiserver && have kube-controller-manager; then
	say "cached: $cache"
	printf '%s\n' "$cache"
	exit 0
fi

command -v go >/dev/null 2>&1 || { say "go is not installed"; exit 1; }
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/ares-k8s-bins.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0

# install BIN: move a freshly built binary into the cache atomically.
install_bin() {
	mv -f "$work/out/$1" "$cache/.$1.tmp"
	mv -f "$cache/.$1.tmp" "$cache/$1"
	say "$1 ready ($(du -h "$cache/$1" | cut -f1))"
}

mkdir -p "$work/out"

if ! have etcd; then
	start=$(date +%s)
	say "building etcd $etcd_version (go.etcd.io/etcd/server/v3)"
	mkdir -p "$work/etcd"
	(
		cd "$work/etcd"
		go mod init ares-k8s-bins/etcd >/dev/null 2>&1
		go get "go.etcd.io/etcd/server/v3@$etcd_version" >&2
		go build -trimpath -ldflags '-s -w' -o "$work/out/etcd" go.etcd.io/etcd/server/v3
	)
	install_bin etcd
	say "etcd took $(($(date +%s) - start))s"
fi

if ! have kube-apiserver || ! have kube-controller-manager; then
	start=$(date +%s)
	minor=${k8s_version#v1.}
	minor=${minor%%.*}
	staging_version=v0.${k8s_version#v1.}
	say "resolving k8s.io/kubernetes $k8s_version (staging modules at $staging_version)"
	mkdir -p "$work/k8s"
	cd "$work/k8s"
	go mod init ares-k8s-bins/kubernetes >/dev/null 2>&1
	gomod=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
	[ -f "$gomod" ] || { say "could not download k8s.io/kubernetes@$k8s_version"; exit 1; }
	staging=$(sed -n 's#^[[:space:]]*\(replace[[:space:]]\+\)\?\(k8s\.io/[^[:space:]]*\)[[:space:]]\+=>[[:space:]]\+\./staging/.*#\2#p' "$gomod" | sort -u)
	[ -n "$staging" ] || { say "no staging modules found in $gomod"; exit 1; }
	say "$(printf '%s\n' "$staging" | wc -l) staging modules"
	args=()
	for m in $staging; do args+=(-replace "$m=$m@$staging_version"); done
	go mod edit "${args[@]}" -require "k8s.io/kubernetes@$k8s_version"
	say "fetching modules (this is the slow part on a cold module cache)"
	go get "k8s.io/kubernetes/cmd/kube-apiserver@$k8s_version" "k8s.io/kubernetes/cmd/kube-controller-manager@$k8s_version" >&2
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
	for bin in kube-apiserver kube-controller-manager; do
		have "$bin" && continue
		say "building $bin $k8s_version"
		go build -trimpath -ldflags "$ldflags" -o "$work/out/$bin" "k8s.io/kubernetes/cmd/$bin"
		install_bin "$bin"
	done
	say "kubernetes binaries took $(($(date +%s) - start))s"
fi

printf '%s\n' "$cache"
