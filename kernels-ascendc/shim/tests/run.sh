#!/bin/sh
# Builds the kernels, the shim and the standalone tests with g++, then runs them (with timings).
# Pass --quick to skip the timing section.
set -e
cd "$(dirname "$0")/../.."
make -j2 build/shim_tests
exec ./build/shim_tests "$@"
