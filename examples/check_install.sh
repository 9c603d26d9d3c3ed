#!/usr/bin/env bash
# Installs the build into fresh prefixes and checks where kysera-check lands:
#   check_install.sh <build dir>
set -u
build=$1
rm -rf all dev tools
cmake --install "$build" --prefix "$PWD/all" > /dev/null || { echo "cmake --install failed"; exit 1; }
[ -x all/bin/kysera-check ] || { echo "kysera-check not installed into bin/"; exit 1; }
all/bin/kysera-check --help | grep -q "usage: kysera-check URL" || { echo "installed kysera-check does not run"; exit 1; }
[ -f all/include/kysera/infra.hpp ] || { echo "headers missing from the full install"; exit 1; }
cmake --install "$build" --prefix "$PWD/dev" --component development > /dev/null || { echo "component development failed"; exit 1; }
[ ! -e dev/bin/kysera-check ] || { echo "--component development installed kysera-check"; exit 1; }
[ -f dev/include/kysera/infra.hpp ] || { echo "--component development lacks the headers"; exit 1; }
cmake --install "$build" --prefix "$PWD/tools" --component tools > /dev/null || { echo "component tools failed"; exit 1; }
[ -x tools/bin/kysera-check ] || { echo "--component tools lacks kysera-check"; exit 1; }
[ ! -e tools/include ] || { echo "--component tools installed headers"; exit 1; }
echo "ok-install"
