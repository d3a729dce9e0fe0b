#!/usr/bin/env bash
# PVP with Open vSwitch as the switch, the stock build against the plugin build
# with the mapping: bench/pvp/pvp_bench.py --switch ovs (same soft NIC, peer,
# alternation, checks and output files as the iovtee-switch runs), given the
# binaries Bazel built. Options after -- go to pvp_bench.py (--help lists them);
# results in bench/pvp/results-ovs unless --out.
#
#   bazel run --config=opt //ovs-plugin:pvp_ovs -- [--sizes 64,1514] [--rounds 3] [--seconds 5]
#
# Usage: pvp_ovs.sh STOCK_VSWITCHD PLUGIN_VSWITCHD LIBIOVTEE_SO LIBRTE_NET_SIMNIC_SO
#                   SIMNIC_PEER [pvp_bench.py options...]
set -euo pipefail
[ $# -ge 5 ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
# pvp_bench.py from the workspace this script is in (Bazel's runfiles link
# to the source file).
bench=$(dirname "$(realpath "$0")")/../bench/pvp/pvp_bench.py
[ -f "$bench" ] || bench=${BUILD_WORKSPACE_DIRECTORY:-.}/bench/pvp/pvp_bench.py
# Each OVS build's programs sit next to its ovs-vswitchd.
exec python3 "$bench" --switch ovs --ovs-stock "$(dirname "$(realpath "$1")")" \
  --ovs-plugin "$(dirname "$(realpath "$2")")" --libiovtee "$(realpath "$3")" \
  --simnic-pmd "$(realpath "$4")" --peer "$(realpath "$5")" "${@:6}"
