#!/usr/bin/env bash
# Make sure Debian's Fashion-MNIST is installed (files under /usr/share/datasets/fashion-mnist):
# apt-get as root, or through password-less sudo; otherwise one line saying how, exit 2.
set -euo pipefail
DIR=/usr/share/datasets/fashion-mnist
if [ -f "$DIR/train-images-idx3-ubyte.gz" ] || [ -f "$DIR/train-images-idx3-ubyte" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
    SUDO="sudo -n"
else
    echo "make bench: Fashion-MNIST is missing; install it as root: apt-get install dataset-fashion-mnist" >&2
    exit 2
fi
echo "installing dataset-fashion-mnist (apt-get)"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist > /dev/null 2>&1 || {
    $SUDO apt-get update -q > /dev/null 2>&1
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist > /dev/null 2>&1
} || { echo "make bench: apt-get install dataset-fashion-mnist failed" >&2; exit 2; }
