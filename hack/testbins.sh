#!/usr/bin/env bash
# Builds the binaries the end-to-end tests run (kube-apiserver, etcd,
# nats-server) and the deploy/ checks run (helm, kubeconform) from the Go
# module proxy, using the pinned modules under hack/testbins/ and hack/tools/.
# Only what is missing or stale is rebuilt: next to each
# binary a stamp file holds a hash of its module's go.mod, go.sum and Go
# files and of the build recipe, so a version bump rebuilds it.
#
# Usage: hack/testbins.sh [all|kube-apiserver|etcd|nats-server|helm|kubeconform]...
#
# Output directory: $PODMEDIC_TESTBIN_DIR, else <repo>/.cache/bin.
# Prints one line per binary: "<name>: cached" or "<name>: built in <N>s".
# Setting PODMEDIC_TESTBINS_FORCE=1 rebuilds even when the stamp matches.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${PODMEDIC_TESTBIN_DIR:-$root/.cache/bin}"
src="$root/hack/testbins"

usage() {
	echo "usage: $0 [all|kube-apiserver|etcd|nats-server|helm|kubeconform]..." >&2
	exit 2
}

# Module directory and package to build, per binary.
mod_dir() {
	case "$1" in
	kube-apiserver) echo "$src/kube" ;;
	etcd) echo "$src/etcd" ;;
	nats-server) echo "$src/nats" ;;
	helm) echo "$root/hack/tools/helm" ;;
	kubeconform) echo "$root/hack/tools/kubeconform" ;;
	*) usage ;;
	esac
}

pkg_of() {
	case "$1" in
	kube-apiserver) echo "k8s.io/kubernetes/cmd/kube-apiserver" ;;
	etcd) echo "." ;;
	nats-server) echo "github.com/nats-io/nats-server/v2" ;;
	helm) echo "helm.sh/helm/v4/cmd/helm" ;;
	kubeconform) echo "github.com/yannh/kubeconform/cmd/kubeconform" ;;
	esac
}

# Extra -ldflags per binary. kube-apiserver reports its version from
# variables that the Kubernetes release build sets with -X; without them it
# says v0.0.0-master, which confuses version-aware clients.
ldflags_of() {
	local flags="-s -w"
	if [[ "$1" == kube-apiserver ]]; then
		local v
		v="$(cd "$(mod_dir "$1")" && go list -mod=readonly -m -f '{{.Version}}' k8s.io/kubernetes)"
		local major="${v#v}" minor
		major="${major%%.*}"
		minor="${v#v*.}"
		minor="${minor%%.*}"
		local p=k8s.io/component-base/version
		flags+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
	fi
	# helm reports the version its release build sets (otherwise "v4.3").
	if [[ "$1" == helm ]]; then
		local v
		v="$(cd "$(mod_dir "$1")" && go list -mod=readonly -m -f '{{.Version}}' helm.sh/helm/v4)"
		flags+=" -X helm.sh/helm/v4/internal/version.version=$v -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
	fi
	if [[ "$1" == kubeconform ]]; then
		local v
		v="$(cd "$(mod_dir "$1")" && go list -mod=readonly -m -f '{{.Version}}' github.com/yannh/kubeconform)"
		flags+=" -X main.version=$v"
	fi
	echo "$flags"
}

stamp_of() {
	local name="$1" dir
	dir="$(mod_dir "$name")"
	{
		echo "recipe: $(pkg_of "$name") $(ldflags_of "$name") CGO_ENABLED=0 -trimpath"
		(cd "$dir" && find . -maxdepth 1 -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) | LC_ALL=C sort | xargs cat)
	} | sha256sum | cut -d' ' -f1
}

build_one() {
	local name="$1" dir pkg ldflags want bin stamp
	dir="$(mod_dir "$name")"
	pkg="$(pkg_of "$name")"
	ldflags="$(ldflags_of "$name")"
	want="$(stamp_of "$name")"
	bin="$out/$name"
	stamp="$out/.$name.stamp"

	if [[ "${PODMEDIC_TESTBINS_FORCE:-}" != 1 && -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
		echo "$name: cached"
		return
	fi

	local start tmp
	start=$(date +%s)
	tmp="$out/.$name.tmp.$$"
	rm -f "$stamp"
	# The modules' go.sum files are complete: -mod=readonly makes a build
	# fail instead of editing them. GOFLAGS (e.g. -buildvcs=false) is kept.
	if ! (cd "$dir" && GOWORK=off CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
		-ldflags="$ldflags" -o "$tmp" "$pkg"); then
		rm -f "$tmp"
		echo "$name: build failed" >&2
		return 1
	fi
	mv -f "$tmp" "$bin"
	echo "$want" >"$stamp"
	echo "$name: built in $(($(date +%s) - start))s"
}

# Fetch modules from the module proxy only, never straight from a VCS.
goproxy="$(go env GOPROXY)"
goproxy="$(echo "$goproxy" | sed -E 's/(^|[,|])direct($|[,|])/\1/g; s/[,|]+$//; s/^[,|]+//')"
if [[ -z "$goproxy" || "$goproxy" == off ]]; then
	echo "$0: GOPROXY ($(go env GOPROXY)) names no module proxy" >&2
	exit 1
fi
export GOPROXY="$goproxy"

names=()
[[ $# -eq 0 ]] && set -- all
for arg in "$@"; do
	case "$arg" in
	all) names+=(kube-apiserver etcd nats-server helm kubeconform) ;;
	kube-apiserver | etcd | nats-server | helm | kubeconform) names+=("$arg") ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done

mkdir -p "$out"
# Two runs at once (e.g. parallel test jobs) would build the same binary
# twice; serialize them.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$out/.lock"
	flock 9
fi

# The tests should run the nats-server the root module links against.
check_nats_version() {
	local want have
	want="$(awk '$1 == "github.com/nats-io/nats-server/v2" { print $2 }' "$root/go.mod")"
	have="$(awk '$1 == "github.com/nats-io/nats-server/v2" { print $2 }' "$src/nats/go.mod")"
	if [[ -n "$want" && "$want" != "$have" ]]; then
		echo "warning: nats-server is $have in hack/testbins/nats/go.mod but $want in go.mod;" \
			"run: (cd hack/testbins/nats && go get github.com/nats-io/nats-server/v2@$want && go mod tidy)" >&2
	fi
}

for name in "${names[@]}"; do
	[[ "$name" == nats-server ]] && check_nats_version
	build_one "$name"
done
