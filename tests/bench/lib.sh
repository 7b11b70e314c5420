# lib.sh - shell helpers the benchmark scripts share (sourced by run.sh and
# ab.sh): messages, stopping a process, free ports, sampling RSS, and the
# arithmetic on results (fields of a "NAME k=v ..." line, medians, ratios).
say() { echo "bench: $*" >&2; }
die() { echo "bench: FAILED: $*" >&2; exit 1; }
stop_pid() { # stop_pid PID: TERM, then KILL after 5 s
  local p=$1
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # free_port [TAKEN...]: below the usual ephemeral range, so
              # wrk's own sockets never clash with it
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    case " $* " in *" $p "*) continue ;; esac
    port_free "$p" && { echo "$p"; return 0; }
  done
  return 1
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" $2"; }
calc() { awk "BEGIN { printf \"%s\", $1 }"; }
ratio() { # ratio NUM DEN: NUM/DEN, or n/a when DEN is not positive
  awk -v n="$1" -v d="$2" 'BEGIN { if (d > 0) printf "%.2f", n / d;
                                   else printf "n/a" }'
}
median() { tr ' ' '\n' <<<"$*" | grep . | sort -g |
             awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
