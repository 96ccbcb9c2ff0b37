#!/bin/sh
# image.sh BINARY [TAG] [BASE] - builds the agent's container image from
# docs/fleet/Dockerfile: BINARY and every shared library `ldd` lists for it
# (with the dynamic loader) are copied into a rootfs/ beside the Dockerfile
# in a temporary build context, on top of the busybox image (BASE, default
# busybox). Prints the image id.
set -eu
bin=$1
tag=${2:-monitor-agent:latest}
base=${3:-busybox}
here=$(cd "$(dirname "$0")" && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin"
cp "$bin" "$ctx/rootfs/usr/local/bin/monitor"
# Libraries at the paths the binary looks for them.
ldd "$bin" | awk '/=> \//{print $3} /^\t\//{print $1}' | while read -r lib; do
	mkdir -p "$ctx/rootfs$(dirname "$lib")"
	cp -L "$lib" "$ctx/rootfs$lib"
done
cp "$here/Dockerfile" "$ctx/"
docker build -q --build-arg BASE="$base" -t "$tag" "$ctx"
