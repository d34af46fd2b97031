#!/usr/bin/env bash
# monitor_cpu.sh — terminal monitor for ERT's CPU/RAM (and GPU) use.
#
# One line every N seconds:
#   [14:23:45] ✅ CPU:  32.5% (OPTIMAL) | RAM:  8.3% (1243 MB)
#   [14:23:47] ⚠️  CPU:  55.2% (MODÉRÉ) | RAM:  9.1% (1356 MB)
#   [14:23:49] 🔥 CPU:  72.8% (ÉLEVÉ)  | RAM: 10.2% (1521 MB) | GPU: 12% (2048/81920 MB)
#
# CPU % is measured over each interval from /proc/PID/stat (utime+stime, plus
# cutime+cstime so that workers which end during the interval still count),
# summed over the Streamlit process and all its descendants; 100 % = one core.
# RAM is the resident memory (VmRSS) of the Streamlit process against MemTotal.
# Needs bash >= 4, coreutils and procps (pgrep); nothing else.
set -u

readonly DEFAULT_MATCH='streamlit run .*ERT\.py'

usage() {
    cat <<'EOF'
Usage: ./monitor_cpu.sh [options]

Print one line every N seconds with the CPU %, status and RAM of the running
ERT app (the process running `streamlit run ERT.py`), plus GPU use when
nvidia-smi is available.

Options:
  -i, --interval N   seconds between lines, decimals allowed (default 2)
  -n, --count N      stop after N lines (default: run until Ctrl+C)
  -p, --pid PID      monitor this process instead of auto-detecting it
      --match REGEX  pgrep -f pattern used for auto-detection
                     (default: 'streamlit run .*ERT\.py')
      --moderate P   CPU % from which the status is MODÉRÉ (default 40)
      --high P       CPU % from which the status is ÉLEVÉ (default 70)
      --no-children  measure the process alone, not its child processes
  -h, --help         show this help and exit

Statuses: ✅ OPTIMAL below --moderate, ⚠️  MODÉRÉ below --high, 🔥 ÉLEVÉ above.
CPU % counts the process and its children over each interval (100 % = one core).
Exit status: 0 after --count lines or Ctrl+C, 1 when the app is not running or
ends while monitored, 2 on a usage error.
EOF
}

die_usage() {
    printf 'monitor_cpu.sh: %s\n' "$1" >&2
    printf "Try './monitor_cpu.sh --help'.\n" >&2
    exit 2
}

not_running() {
    # shellcheck disable=SC2016  # the backquotes are literal
    printf 'ERT (streamlit run ERT.py) is not running — start it with `make run`, or pass --pid PID%s\n' \
        "${1:-}" >&2
    exit 1
}

ended() {
    printf '\nthe process %s has ended\n' "$1" >&2
    exit 1
}

# "12.5" -> 125 (tenths). Caller has validated the format.
to_tenths() {
    local whole=${1%%.*} frac=0
    [[ $1 == *.* ]] && frac=${1#*.}
    frac=${frac}0
    echo $(( 10#${whole:-0} * 10 + 10#${frac:0:1} ))
}

is_number() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$|^[.][0-9]+$ ]]; }

# ---------------------------------------------------------------- arguments
interval=2
count=0
pid=""
match=$DEFAULT_MATCH
moderate=40
high=70
children=1

need_value() { [[ $# -ge 2 ]] || die_usage "option $1 needs a value"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        -i|--interval) need_value "$@"; interval=$2; shift 2 ;;
        --interval=*) interval=${1#*=}; shift ;;
        -n|--count) need_value "$@"; count=$2; shift 2 ;;
        --count=*) count=${1#*=}; shift ;;
        -p|--pid) need_value "$@"; pid=$2; shift 2 ;;
        --pid=*) pid=${1#*=}; shift ;;
        --match) need_value "$@"; match=$2; shift 2 ;;
        --match=*) match=${1#*=}; shift ;;
        --moderate) need_value "$@"; moderate=$2; shift 2 ;;
        --moderate=*) moderate=${1#*=}; shift ;;
        --high) need_value "$@"; high=$2; shift 2 ;;
        --high=*) high=${1#*=}; shift ;;
        --no-children) children=0; shift ;;
        *) die_usage "unknown option: $1" ;;
    esac
done

if ! is_number "$interval" || [[ ! $interval =~ [1-9] ]]; then
    die_usage "--interval needs a positive number of seconds, not '$interval'"
fi
[[ $count =~ ^[0-9]+$ ]] || die_usage "--count needs a whole number, not '$count'"
[[ -z $pid || $pid =~ ^[1-9][0-9]*$ ]] || die_usage "--pid needs a process id, not '$pid'"
is_number "$moderate" || die_usage "--moderate needs a percentage, not '$moderate'"
is_number "$high" || die_usage "--high needs a percentage, not '$high'"
moderate10=$(to_tenths "$moderate")
high10=$(to_tenths "$high")
(( moderate10 <= high10 )) || die_usage "--moderate ($moderate) must not exceed --high ($high)"
count=$(( 10#$count ))

[[ -r /proc/self/stat ]] || { echo "monitor_cpu.sh: needs Linux /proc" >&2; exit 2; }
clk_tck=$(getconf CLK_TCK 2>/dev/null) || clk_tck=100
[[ $clk_tck =~ ^[1-9][0-9]*$ ]] || clk_tck=100

mem_total_kb=0
while read -r key val _; do
    if [[ $key == MemTotal: ]]; then mem_total_kb=$val; break; fi
done </proc/meminfo
(( mem_total_kb > 0 )) || { echo "monitor_cpu.sh: cannot read MemTotal" >&2; exit 2; }

# ------------------------------------------------------------ /proc helpers
# Fields of /proc/PID/stat after "(comm) ": [0]=state [1]=ppid [11]=utime
# [12]=stime [13]=cutime [14]=cstime [19]=starttime.
split_stat() {  # the fields after "(comm) " are numbers and one letter: safe to split
    # shellcheck disable=SC2206
    F=(${1##*) })
}

stat_fields() {  # stat_fields PID -> sets the array F; fails if gone
    local line
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    split_stat "$line"
    [[ ${F[0]} != Z && ${F[0]} != X ]]
}

cmdline_of() {
    local args=()
    { mapfile -d '' -t args <"/proc/$1/cmdline"; } 2>/dev/null || return 1
    printf '%s' "${args[*]}"
}

now_us() {  # microseconds; EPOCHREALTIME's decimal sign follows the locale
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        echo "${EPOCHREALTIME//[!0-9]/}"
    else
        local up _
        read -r up _ </proc/uptime
        echo $(( 10#${up//[!0-9]/} * 10000 ))
    fi
}

# Total CPU ticks of the tree rooted at $pid (or of $pid alone). Sets TICKS,
# NPROC; fails when the root process is gone or has been replaced.
declare -A KIDS=() T=()
tree_ticks() {
    local f p line root_ok=0
    TICKS=0 NPROC=0
    if (( ! children )); then
        stat_fields "$pid" && [[ ${F[19]} == "$start_time" ]] || return 1
        TICKS=$(( F[11] + F[12] + F[13] + F[14] )); NPROC=1
        return 0
    fi
    KIDS=() T=()
    for f in /proc/[0-9]*/stat; do
        { read -r line <"$f"; } 2>/dev/null || continue
        p=${f#/proc/}; p=${p%/stat}
        split_stat "$line"
        [[ ${F[0]} == Z || ${F[0]} == X ]] && [[ $p != "$pid" ]] && continue
        if [[ $p == "$pid" ]]; then
            [[ ${F[0]} != Z && ${F[0]} != X && ${F[19]} == "$start_time" ]] || return 1
            root_ok=1
        fi
        KIDS[${F[1]}]+=" $p"
        T[$p]=$(( F[11] + F[12] + F[13] + F[14] ))
    done
    (( root_ok )) || return 1
    local queue=("$pid") i=0 kid
    while (( i < ${#queue[@]} )); do
        p=${queue[i]}; i=$(( i + 1 ))
        [[ $p == "$$" ]] && continue   # never count this monitor itself
        TICKS=$(( TICKS + ${T[$p]:-0} )); NPROC=$(( NPROC + 1 ))
        for kid in ${KIDS[$p]:-}; do queue+=("$kid"); done
    done
    return 0
}

rss_kb() {
    local key val _
    { while read -r key val _; do
          if [[ $key == VmRSS: ]]; then echo "$val"; return 0; fi
      done <"/proc/$pid/status"; } 2>/dev/null
    return 1
}

# ------------------------------------------------------------ find the app
if [[ -z $pid ]]; then
    command -v pgrep >/dev/null || { echo "monitor_cpu.sh: pgrep (procps) is missing; pass --pid PID" >&2; exit 2; }
    hint=""
    [[ $match != "$DEFAULT_MATCH" ]] && hint=" (no process matches '$match')"
    declare -A cand=()
    while read -r c; do
        [[ $c == "$$" ]] && continue
        # Skip this monitor's own subshells and any other monitor whose
        # command line happens to contain the pattern.
        stat_fields "$c" || continue
        [[ ${F[1]} == "$$" ]] && continue
        [[ $(cmdline_of "$c") == *monitor_cpu* ]] && continue
        cand[$c]=1
    done < <(pgrep -f -- "$match" 2>/dev/null)
    (( ${#cand[@]} )) || not_running "$hint"
    # Prefer a root of the matching processes (whose parent does not match),
    # then the oldest one.
    best="" best_start="" roots=0
    for c in "${!cand[@]}"; do
        stat_fields "$c" || continue
        [[ -n ${cand[${F[1]}]:-} ]] && continue
        roots=$(( roots + 1 ))
        if [[ -z $best ]] || (( F[19] < best_start )); then best=$c; best_start=${F[19]}; fi
    done
    [[ -n $best ]] || not_running "$hint"
    pid=$best
    found="auto-detected"
    (( roots > 1 )) && found="oldest of $roots matching processes; choose with --pid"
else
    found="given with --pid"
    if ! stat_fields "$pid"; then
        # shellcheck disable=SC2016  # the backquotes are literal
        printf 'ERT is not running as process %s — start it with `make run`, or pass the --pid of a running process\n' \
            "$pid" >&2
        exit 1
    fi
fi
stat_fields "$pid" || ended "$pid"
start_time=${F[19]}

gpu=0
command -v nvidia-smi >/dev/null 2>&1 && gpu=1

gpu_text() {
    local out line util used total n=0 text=""
    out=$(timeout 5 nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total \
          --format=csv,noheader,nounits 2>/dev/null) || return 0
    local lines=()
    mapfile -t lines <<<"$out"
    for line in "${lines[@]}"; do
        [[ -n $line ]] || continue
        IFS=', ' read -r util used total _ <<<"$line"
        if (( ${#lines[@]} > 1 )); then
            text+=" | GPU$n: ${util}% (${used}/${total} MB)"
        else
            text+=" | GPU: ${util}% (${used}/${total} MB)"
        fi
        n=$(( n + 1 ))
    done
    printf '%s' "$text"
}

# ------------------------------------------------------------------- header
cmd=$(cmdline_of "$pid") || cmd="?"
(( ${#cmd} > 70 )) && cmd="${cmd:0:67}..."
what="PID $pid and its child processes"
(( children )) || what="PID $pid alone"
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
gpu_note=""
(( gpu )) && gpu_note=" GPU: whole card(s), from nvidia-smi."
printf 'Monitoring PID %s (%s) [%s] — CPU: %s, averaged over each %ss (100%% = 1 core, %s cores); RAM: VmRSS of PID %s / MemTotal.%s Thresholds: MODÉRÉ from %s%%, ÉLEVÉ from %s%%. Ctrl+C to stop.\n' \
    "$pid" "$cmd" "$found" "$what" "$interval" "$ncpu" "$pid" "$gpu_note" "$moderate" "$high"

trap 'printf "\n"; exit 0' INT
trap 'exit 0' TERM

# --------------------------------------------------------------------- loop
tree_ticks || ended "$pid"
prev_ticks=$TICKS
prev_us=$(now_us)
printed=0
while :; do
    sleep "$interval"
    tree_ticks || ended "$pid"
    now=$(now_us)
    elapsed=$(( now - prev_us ))
    (( elapsed > 0 )) || elapsed=1
    delta=$(( TICKS - prev_ticks ))
    (( delta >= 0 )) || delta=0     # a child died unreaped: its ticks left the tree
    prev_ticks=$TICKS prev_us=$now

    # tenths of a percent, rounded: delta / (elapsed_s * clk_tck) * 100 * 10
    num=$(( delta * 1000 * 1000000 ))
    den=$(( elapsed * clk_tck ))
    cpu10=$(( (2 * num + den) / (2 * den) ))

    rss=$(rss_kb) || ended "$pid"
    ram10=$(( (2 * rss * 1000 + mem_total_kb) / (2 * mem_total_kb) ))
    ram_mb=$(( (rss + 512) / 1024 ))

    if (( cpu10 < moderate10 )); then
        icon="✅ " label="(OPTIMAL) "
    elif (( cpu10 < high10 )); then
        icon="⚠️  " label="(MODÉRÉ) "
    else
        icon="🔥 " label="(ÉLEVÉ)  "
    fi
    extra=""
    (( gpu )) && extra=$(gpu_text)

    printf '[%(%H:%M:%S)T] %sCPU: %3d.%d%% %s| RAM: %2d.%d%% (%d MB)%s\n' -1 \
        "$icon" $(( cpu10 / 10 )) $(( cpu10 % 10 )) "$label" \
        $(( ram10 / 10 )) $(( ram10 % 10 )) "$ram_mb" "$extra"

    printed=$(( printed + 1 ))
    (( count > 0 && printed >= count )) && exit 0
done
