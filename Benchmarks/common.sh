# Sourced by the benchmarks: from the package root, with a scratch directory `$work`
# removed at exit and `$cowtrace`, a release build of this tree (or $COWTRACE, to compare an older build).
cd "$(dirname "${BASH_SOURCE[1]}")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
swift build -c release --product cowtrace >/dev/null
cowtrace=${COWTRACE:-$(swift build -c release --show-bin-path)/cowtrace}
