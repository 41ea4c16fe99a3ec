#!/usr/bin/env bash
# Runs two builds of retail-ingest on the same inputs and compares every file they write, byte
# for byte: the demo's three generated days, and the real feed's two days when
# ../shared/data/real exists. For a change that must not change outputs (a refactoring).
#
#   scripts/compare-outputs.sh OLD_BINARY NEW_BINARY [WORK_DIR]
#
# Compared as they are: every Parquet file (transactions, rejects, store_daily, the referential
# copies and their rejects). Compared with what differs between any two runs blanked (run ids,
# times, durations, and the ETags a local directory derives from inodes and times): the
# data-quality pages, the published and the runs/ reports, the quarantine notes, the
# referentials' _source.json, and formatted/clients/_lookup.bin (all but its stamp and checksum). Prints
# one line per file and exits 1 when any differs.
set -euo pipefail

old=${1:?usage: compare-outputs.sh OLD_BINARY NEW_BINARY [WORK_DIR]}
new=${2:?usage: compare-outputs.sh OLD_BINARY NEW_BINARY [WORK_DIR]}
work=${3:-$(mktemp -d)}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
real="$root/../shared/data/real"

# What varies from run to run: run ids (20231124T091201.118Z-3d9572b1), ISO timestamps, durations.
normalize() {
    sed -E \
        -e 's/[0-9]{8}T[0-9]{6}(\.[0-9]+)?Z-[0-9a-f]{8}/RUN_ID/g' \
        -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}| UTC)?/TIME/g' \
        -e 's/"duration_ms": [0-9]+/"duration_ms": N/g' \
        -e 's/[0-9a-f]+-[0-9a-f]{10,}-[0-9a-f]+(\\"|&quot;|")/ETAG\1/g' \
        "$1"
}

# A clients lookup file without its stamp and checksum (the stamp names the source's ETag, which a
# local directory derives from the file's inode and time): the magic, the count and the pairs.
lookup_body() {
    python3 -c '
import struct, sys
data = open(sys.argv[1], "rb").read()
stamp = struct.unpack_from("<I", data, 8)[0]
sys.stdout.buffer.write(data[:8] + data[12 + stamp:-8])' "$1"
}

# The run reports of one date sorted by run id, renamed by their rank, so both trees name them alike.
rank_runs() {
    local dir=$1
    [ -d "$dir/runs" ] || return 0
    for date_dir in "$dir"/runs/*/; do
        local i=0
        for report in $(ls "$date_dir" | sort); do
            i=$((i + 1))
            mv "$date_dir/$report" "$date_dir/run-$i.json"
        done
    done
}

produce() {
    local binary=$1 out=$2
    rm -rf "$out"
    mkdir -p "$out"
    (cd "$out" && "$binary" demo --store demo >/dev/null)
    if [ -d "$real" ]; then
        mkdir -p "$out/real"
        cp "$real"/*.csv "$out/real/"
        "$binary" run --store "$out/real" --dates 2023-11-23 2023-11-26 >/dev/null
    fi
    rank_runs "$out/demo"
    [ -d "$out/real" ] && rank_runs "$out/real"
    return 0
}

produce "$old" "$work/old"
produce "$new" "$work/new"

differ=0
count=0
while IFS= read -r file; do
    count=$((count + 1))
    a="$work/old/$file" b="$work/new/$file"
    if [ ! -f "$b" ]; then
        echo "MISSING in new: $file"
        differ=1
        continue
    fi
    case "$file" in
        *.parquet | *.csv) same=$(cmp -s "$a" "$b" && echo yes || echo no) ;;
        *_lookup.bin) same=$(cmp -s <(lookup_body "$a") <(lookup_body "$b") && echo yes || echo no) ;;
        *) same=$(cmp -s <(normalize "$a") <(normalize "$b") && echo yes || echo no) ;;
    esac
    if [ "$same" = yes ]; then
        echo "same     $file"
    else
        echo "DIFFERS  $file"
        differ=1
    fi
done < <(cd "$work/old" && find . -type f ! -name '.retail-ingest-demo' | sed 's|^\./||' | sort)
extra=$(comm -13 <(cd "$work/old" && find . -type f | sort) <(cd "$work/new" && find . -type f | sort))
if [ -n "$extra" ]; then
    echo "only in new:"
    echo "$extra"
    differ=1
fi
echo "compared $count files in $work: $([ $differ = 0 ] && echo 'all the same' || echo 'SOME DIFFER')"
exit $differ
