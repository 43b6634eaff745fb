# shellcheck shell=bash
# CPU accounting of the benchmarks, sourced by bench/run and bench/crypt.sh:
# the whole machine's busy time over a measurement, per GB moved. Needs
# $NSPERF (bench/nsperf.c built), $TMP/netns (the bed's namespaces, lib.sh)
# and, for cpu_per_gb's second figure, $IDLE (idle_rate).

now() { date +%s.%N; }

# cpu_busy: jiffies (USER_HZ) the whole machine was busy: everything but idle
# and iowait, softirq included (XDP and TC run there).
cpu_busy() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# idle_rate: busy jiffies per second of the machine with the bed up and no
# traffic (the issue's method: whole machine minus an idle baseline).
idle_rate() {
	local c0 c1 t0 t1

	c0=$(cpu_busy) t0=$(now)
	sleep 0.5
	c1=$(cpu_busy) t1=$(now)
	awk -v c="$((c1 - c0))" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.2f", c / (t1 - t0) }'
}

# cpu_snap FILE: a snapshot for cpu_per_gb: the time, the machine's busy
# ticks, and the CPU time of every user-space process outside this bed's
# namespaces (other users of the shared machine: a VM test can keep a whole
# CPU busy), one line per process.
cpu_snap() {
	{
		echo "t $(now)"
		# shellcheck disable=SC2046
		"$NSPERF" cpu $(sed 's|^|/run/netns/|' "$TMP/netns")
	} >"$1"
}

# cpu_per_gb SNAP0 SNAP1 BYTES: CPU seconds per GB moved, two ways:
#  - (busy - others) / GB: everything the machine did minus the CPU time of
#    the other users' processes that lived through the run (kernel work such
#    as softirqs, where XDP and TC run, counts as ours);
#  - (busy - idle rate x time) / GB: minus the idle baseline taken before.
# Prints "OURS IDLEBASE".
cpu_per_gb() {
	awk -v bytes="$3" -v idle="$IDLE" -v hz="$(getconf CLK_TCK)" '
		FNR == 1 { f++ }
		$1 == "t" { t[f] = $2 } $1 == "busy" { busy[f] = $2 }
		$1 == "pid" { if (f == 1) p0[$2] = $3; else if ($2 in p0) oth += $3 - p0[$2] }
		END {
			b = busy[2] - busy[1]; dt = t[2] - t[1]; gb = bytes / 1e9
			s1 = (b - oth) / hz; if (s1 < 0) s1 = 0
			s2 = (b - idle * dt) / hz; if (s2 < 0) s2 = 0
			if (gb > 0) printf "%.3f %.3f\n", s1 / gb, s2 / gb; else print "NA NA"
		}' "$1" "$2"
}

# proc_cpu PIDS...: their utime+stime in ticks (of those still alive).
proc_cpu() {
	local p f=()

	for p in "$@"; do [ -r "/proc/$p/stat" ] && f+=("/proc/$p/stat"); done
	[ ${#f[@]} -gt 0 ] || { echo 0; return; }
	# the command name (field 2) may hold spaces: count from after its ')'
	cat "${f[@]}" | sed 's/.*) //' | awk '{ s += $12 + $13 } END { print s + 0 }'
}
