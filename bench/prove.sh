#!/usr/bin/env bash
# One budget's proof, as the README reports it (issue 14): the default search, then its winner
# judged by `nas verify` on seeds 0,1,2 and on seeds nobody used before (10,11,12).
#
#   bench/prove.sh general-4k --max-params 4000
#   bench/prove.sh fashion-8k --max-params 8000 --dataset fashion-mnist
#   bench/prove.sh macs-500k --max-params 0 --max-macs 500000
#
# Everything after the study name goes to `nas search` (with --timeout 7200 --workers 2
# unless given). Run it in the background; run it again to go on: a search that has named its
# winner is not run again, and verify runs resume seed by seed. Log: results/STUDY.log.
# Last, `nas archive` moves the study and its log to results/cpu-DATE/STUDY/ (ARCHIVE_INTO
# overrides; ARCHIVE_INTO=none keeps it in place), compacted for committing, and `nas report`
# writes its page there: the same command then starts a new study, as `make search` on a
# clone must.
# PROVE_COMMIT=1 commits what each stage wrote as soon as it ends (results/ is git-ignored, so
# with `git add -f`): a machine that goes away mid-proof then takes nothing uncommitted with it.
# To stop it: `kill` (SIGTERM) the running nas process. A job started in the background from a
# script (nohup ... &) inherits SIGINT as ignored: the search stops on it, nas verify does not.
set -euo pipefail
cd "$(dirname "$0")/.."
study=${1:?usage: bench/prove.sh STUDY [nas search flags]}
shift
nas=${NAS:-.venv/bin/nas}
# MNIST from ../shared/data unless NAS_DATA_DIR says otherwise, as `make search` does
[ -n "${NAS_DATA_DIR:-}" ] || { [ -d ../shared/data ] && export NAS_DATA_DIR="$(cd ../shared/data && pwd)"; }
log=results/$study.log
mkdir -p results
checkpoint() {  # checkpoint MESSAGE PATH...: commit PATHs if PROVE_COMMIT=1; never fatal
  [ "${PROVE_COMMIT:-0}" = 1 ] || return 0
  local msg=$1; shift
  # git's output goes to the log while there is one; once nas archive has moved the log into
  # the study, to stderr, so that no empty results/STUDY.log is made again and committed
  local out=/dev/stderr; [ -f "$log" ] && out=$log
  { git add -f -A -- "$@" && git commit -q -m "$msg" -- "$@"; } >> "$out" 2>&1 \
    || echo "checkpoint: nothing committed for: $msg" >> "$out"
}
extra=()
[[ " $* " == *" --timeout "* ]] || extra+=(--timeout 7200)
[[ " $* " == *" --workers "* ]] || extra+=(--workers 2)
if ! grep -q '"winner"' "results/$study/study.json" 2>/dev/null; then
  echo "$ nas search --study $study $* ${extra[*]} --no-progress  # $(date -u +%FT%TZ)" >> "$log"
  "$nas" search --study "$study" "$@" "${extra[@]}" --no-progress >> "$log" 2>&1
  # not the weights of every full-length candidate (40-120 kB each, 1-3.5 MB a search, kept in
  # git's history for good): the archive step below commits the ones it keeps, and until then
  # any trial retrains from the journal (nas verify STUDY --trial N)
  checkpoint "$study: search finished" "results/$study" ":(exclude)results/$study/trials" "$log"
fi
# Three seeds at once, one thread each: 2 cores, 3 processes, no core idle for a third round.
for seeds in 0,1,2 10,11,12; do
  name=$study-winner-seeds${seeds//,/-}
  echo "$ nas verify $study --trial winner --seeds $seeds --name $name  # $(date -u +%FT%TZ)" >> "$log"
  "$nas" verify "$study" --trial winner --seeds "$seeds" --workers 3 --resume --name "$name" \
    --no-progress >> "$log" 2>&1
  # the unseen seeds' weights stay on disk but out of git: only their accuracy is reported,
  # and a clone must stay under 20 MB (tests/test_repo.py); bench/deploy.py uses seeds 0,1,2
  keep=("results/verify/$name"); [ "$seeds" = 0,1,2 ] || keep+=(":(exclude)results/verify/$name/*.pt")
  checkpoint "$study: nas verify --seeds $seeds" "${keep[@]}" "$log"
done
into=${ARCHIVE_INTO:-results/cpu-$(date -u +%F)}
if [ "$into" = none ]; then
  echo "done: results/$study/ and results/verify/$study-winner-seeds*/  # $(date -u +%FT%TZ)" >> "$log"
else
  echo "done: $into/$study/ and results/verify/$study-winner-seeds*/  # $(date -u +%FT%TZ)" >> "$log"
  "$nas" archive "$study" --into "$into"
  # the report's page and table with it; trials.parquet only, as the table trials.csv repeats
  # would cost a clone 30 kB a study (bench/ reads either through nas.studyio.read_trials)
  "$nas" report "$study" --results-dir "$into" >&2 || echo "report failed: run nas report" >&2
  checkpoint "$study: archived into $into, with its report" "results/$study" "$log" \
    "$into/$study" ":(exclude)$into/$study/trials.csv"
fi
