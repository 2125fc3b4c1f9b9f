#!/usr/bin/env bash
# Moved (issue #28): the GPU check is tools/gpu_check/device_check.sh; this path only says so.
echo "benchmarks/device_check.sh moved; run: bash tools/gpu_check/device_check.sh $*" >&2
exit 2
