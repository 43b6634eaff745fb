#!/bin/bash
# Running natsplice as a service (README "Install"): `make install` lays out
# binaries, man pages, systemd units and the example configuration (kept on a
# second install); the man pages render cleanly and list every option and
# key; systemd-analyze verify accepts the units; the units, booted under
# systemd (systemd-nspawn on the host's tree with the installed tree over
# it, one container per namespace of the system test topology), run broker,
# relay and agents and a download goes through them; `make deb` builds a
# package lintian finds no error in.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

UNITS="natsplice-broker.service natsplice-agent.service natsplice-relay@.service"
SBIN=usr/local/sbin
MAN=usr/local/share/man
UNITDIR=usr/local/lib/systemd/system

# install_tree: `make install DESTDIR=$DEST`, its output in $TMP/install.log.
install_tree() {
	DEST=$TMP/dest
	make -C "$TOP" --no-print-directory install DESTDIR="$DEST" >"$TMP/install.log" 2>&1 ||
		fail "make install failed: $(tail -n 5 "$TMP/install.log")"
}

# overlay_root NAME: $TMP/NAME/root, the host's tree with a copy of $DEST
# over it (copy-on-write: nothing reaches the host; $DEST is the upper
# layer's start, since overlayfs refuses a lower layer inside another),
# unmounted at teardown.
overlay_root() {
	local d=$TMP/$1

	mkdir -p "$d/up" "$d/work" "$d/root"
	cp -a "$DEST/." "$d/up/"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$d/up,workdir=$d/work" "$d/root"
	echo "$d/root" >>"$TMP/mounts"
	ROOT=$d/root
}

# man_clean PAGE: groff and man render it without a warning.
man_clean() {
	local out

	out=$(groff -man -Tutf8 -ww -z "$1" 2>&1) || fail "groff failed on ${1##*/}: $out"
	[ -z "$out" ] || fail "groff warns on ${1##*/}: $out"
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null)
	[ -z "$out" ] || fail "man warns on ${1##*/}: $out"
}

# man_has PAGE WORD...: the rendered page mentions each WORD.
man_has() {
	local page=$1 text w

	shift
	text=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$page" 2>/dev/null | col -b)
	for w in "$@"; do
		grep -qF -- "$w" <<<"$text" || fail "${page##*/} does not mention '$w'"
	done
}

# options CMD...: the long options in CMD --help.
options() {
	"$@" --help | grep -oE '^  (-[a-zA-Z], )?--[a-z0-9-]+' | sed 's/.*--/--/'
}

# keys FILE: the top-level keys of an example YAML file (commented ones too).
keys() {
	grep -oE '^#? ?[a-z][a-z0-9-]*:' "$1" | sed 's/^# \{0,1\}//' | sort -u
}

test_install_layout() {
	need groff man col
	install_tree
	local f mode
	for f in "$SBIN/natsplice" "$SBIN/natsplice-broker" "$SBIN/natsplice-agent"; do
		[ -x "$DEST/$f" ] || fail "$f is not installed executable"
	done
	for f in natsplice natsplice-broker natsplice-agent; do
		[ -f "$DEST/$MAN/man8/$f.8" ] || fail "$MAN/man8/$f.8 is missing"
		man_clean "$DEST/$MAN/man8/$f.8"
	done
	for f in broker agent relay; do
		[ -f "$DEST/$MAN/man5/natsplice-$f.yaml.5" ] || fail "natsplice-$f.yaml.5 is missing"
		man_clean "$DEST/$MAN/man5/natsplice-$f.yaml.5"
		cmp -s "$DEST/usr/local/share/doc/natsplice/examples/$f.yaml" "$TOP/examples/$f.yaml" ||
			fail "examples/$f.yaml is not in share/doc/natsplice/examples"
		mode=$(stat -c %a "$DEST/etc/natsplice/$f.yaml")
		[ "$mode" = 640 ] || fail "/etc/natsplice/$f.yaml has mode $mode, not 640"
	done
	for f in $UNITS; do
		grep -q "/usr/local/sbin/natsplice" "$DEST/$UNITDIR/$f" ||
			fail "$f does not run /usr/local/sbin/natsplice*"
	done
	grep -q '^u natsplice ' "$DEST/usr/local/lib/sysusers.d/natsplice.conf" ||
		fail "no sysusers.d entry for the natsplice user"
	# Nothing else: every installed file is one of these.
	[ "$(find "$DEST" -type f | wc -l)" = 19 ] ||
		fail "make install installed $(find "$DEST" -type f | wc -l) files, not 19: $(find "$DEST" -type f)"

	# Every option of --help in the section 8 page, every key of the
	# examples in the section 5 page (generated from the same tables).
	man_has "$DEST/$MAN/man8/natsplice-broker.8" $(options "$TOP/broker/natsplice-broker")
	man_has "$DEST/$MAN/man8/natsplice-agent.8" $(options "$TOP/agent/natsplice-agent")
	man_has "$DEST/$MAN/man8/natsplice.8" $(options "$TOP/ctl/natsplice" relay run)
	man_has "$DEST/$MAN/man5/natsplice-broker.yaml.5" $(keys "$TOP/examples/broker.yaml")
	man_has "$DEST/$MAN/man5/natsplice-agent.yaml.5" $(keys "$TOP/examples/agent.yaml") \
		target compress encrypt pool-idle reverse
	man_has "$DEST/$MAN/man5/natsplice-relay.yaml.5" $(keys "$TOP/examples/relay.yaml")

	# A second install keeps the configuration an operator edited.
	echo "# edited" >>"$DEST/etc/natsplice/broker.yaml"
	install_tree
	tail -n 1 "$DEST/etc/natsplice/broker.yaml" | grep '^# edited$' >/dev/null ||
		fail "a second make install overwrote /etc/natsplice/broker.yaml"
	grep -q "KEEP .*/etc/natsplice/broker.yaml" "$TMP/install.log" ||
		fail "make install did not say it kept broker.yaml"
}

test_units_verify() {
	need systemd-analyze
	install_tree
	overlay_root verify
	local out
	out=$(cd "$ROOT" && systemd-analyze verify --root="$ROOT" --man=no \
		$(for u in $UNITS; do echo "$UNITDIR/$u"; done) 2>&1) ||
		fail "systemd-analyze verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
}

# ---------------------------------------------------------------- under systemd

# ct_boot NS NAME UNIT: systemd booted (systemd-nspawn) in network namespace
# NS on overlay_root NAME, reaching only UNIT (natsplice-test.target). The
# natsplice user is made first (systemd-sysusers --root) and owns group
# read of /etc/natsplice/*.yaml. CT_PID: the container's PID 1.
ct_boot() {
	local ns=$1 name=$2 unit=$3 pid

	overlay_root "$name"
	systemd-id128 new >"$ROOT/etc/machine-id"
	systemd-sysusers --root="$ROOT" "$ROOT/usr/local/lib/sysusers.d/natsplice.conf"
	chgrp "$(awk -F: '$1 == "natsplice" { print $3 }' "$ROOT/etc/group")" \
		"$ROOT"/etc/natsplice/*.yaml
	cat >"$ROOT/etc/systemd/system/natsplice-test.target" <<-EOF
	[Unit]
	Requires=sysinit.target $unit
	After=sysinit.target $unit
	AllowIsolate=yes
	EOF
	systemd-nspawn -q --register=no --keep-unit --console=passive -D "$ROOT" \
		--network-namespace-path="/run/netns/$ns" \
		--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN --system-call-filter="bpf perf_event_open" \
		-b systemd.unit=natsplice-test.target >"$TMP/ct-$name.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >>"$TMP/pids"
	wait_until 30 pgrep -P "$pid" >/dev/null || fail "systemd-nspawn did not boot: $(tail -n 3 "$TMP/ct-$name.log")"
	CT_PID=$(pgrep -P "$pid")
}

# ct PID CMD...: CMD inside the container whose PID 1 is PID.
ct() {
	local pid=$1

	shift
	nsenter -t "$pid" -m -u -i -n -p -- "$@"
}

# unit_ready PID UNIT: UNIT's journal has its daemon's "ready" line.
unit_ready() {
	ct "$1" journalctl -q -u "$2" -o cat 2>/dev/null | grep "${3:-ready}" >/dev/null
}

# wait_unit PID UNIT [REGEX]: wait for the line, or fail with the unit's log.
wait_unit() {
	wait_until "$READY_TIMEOUT" unit_ready "$@" ||
		fail "$2 did not log '${3:-ready}': $(ct "$1" journalctl -q -u "$2" -n 12 -o cat 2>&1)"
}

test_units_run_system() {
	need systemd-nspawn nsenter
	need_system
	install_tree
	topo_nat
	local broker relay ha hb fp user

	# The broker's certificate, made beforehand: the relay and the agents pin it.
	mkdir -p "$DEST/var/lib/natsplice"
	printf 'listen: %s:%s\nhttp: %s\nagents:\n  - { name: home-nas, secret: nas-secret }
  - { name: laptop, secret: laptop-secret }\nrelays:\n  - { name: relay1, secret: relay-secret }\n' \
		"$BROKER4" "$BROKER_PORT" "$BROKER_HTTP" >"$DEST/etc/natsplice/broker.yaml"
	fp=$("$BROKER_BIN" --fingerprint -f "$DEST/etc/natsplice/broker.yaml" \
		--tls-cert "$DEST/var/lib/natsplice/broker.crt" \
		--tls-key "$DEST/var/lib/natsplice/broker.key")
	# dev: lo, and the unit's --dev eth0 must win
	printf 'dev: lo\naddress: %s\nports: 20000-20999\nbroker: %s:%s\nname: relay1
secret: relay-secret\nbroker-fingerprint: %s\n' "$SRELAY4" "$BROKER4" "$BROKER_PORT" "$fp" \
		>"$DEST/etc/natsplice/relay-eth0.yaml"
	agent_conf() {
		printf 'broker: %s:%s\nname: %s\nsecret: %s\nbroker-fingerprint: %s\n%s\n' \
			"$BROKER4" "$BROKER_PORT" "$1" "$2" "$fp" "$3" >"$DEST/etc/natsplice/agent.yaml"
	}

	ct_boot "$BROKER" broker natsplice-broker.service
	broker=$CT_PID
	wait_unit "$broker" natsplice-broker.service
	user=$(ct "$broker" ps -o user= -C natsplice-broker)
	[ "$user" = natsplice ] || fail "the broker runs as '$user', not natsplice"

	ct_boot "$RELAY" relay natsplice-relay@eth0.service
	relay=$CT_PID
	wait_unit "$relay" natsplice-relay@eth0.service "registered with broker"
	# (outside the host's network namespace the socket's name has a suffix,
	# relay-eth0.nsINODE.sock: the CLI finds it)
	ct "$relay" sh -c 'test -S /run/natsplice/relay-eth0*.sock' ||
		fail "no control socket /run/natsplice/relay-eth0*.sock"
	user=$(ct "$relay" ps -o user= -C natsplice)
	[ "$user" = nobody ] || fail "the relay runs as '$user', not nobody"

	random_file "$TMP/web.bin" $((1 << 20))
	web_server "$HA" 8080 "$TMP/web.bin"
	agent_conf home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080 }'
	ct_boot "$HA" ha natsplice-agent.service
	ha=$CT_PID
	wait_unit "$ha" natsplice-agent.service
	agent_conf laptop laptop-secret 'subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080 }'
	ct_boot "$HB" hb natsplice-agent.service
	hb=$CT_PID
	wait_unit "$hb" natsplice-agent.service

	http_get "$HB" http://127.0.0.1:18080/ "$TMP/got.bin" ||
		fail "the download through the units failed"
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the download differs"
	[ "$(last_session_path)" = relay ] || fail "path is $(last_session_path), not relay"
	ct "$broker" test -s /var/lib/natsplice/broker.key || fail "no key in the StateDirectory"

	# systemctl stop reaches the daemon.
	ct "$broker" systemctl stop natsplice-broker.service
	ct "$broker" systemctl is-active -q natsplice-broker.service &&
		fail "natsplice-broker.service still active after stop"
	return 0
}

test_deb_lintian() {
	need dpkg-buildpackage dh lintian fakeroot
	local out
	out=$(make -C "$TOP" --no-print-directory deb 2>&1) || fail "make deb failed: $out"
	local deb
	deb=$(ls "$TOP"/build/deb/natsplice_*.deb) || fail "make deb made no package"
	dpkg-deb -c "$deb" >"$TMP/contents"
	for f in ./usr/sbin/natsplice-broker ./usr/sbin/natsplice-agent ./usr/sbin/natsplice \
		./lib/systemd/system/natsplice-broker.service ./lib/systemd/system/natsplice-relay@.service \
		./usr/share/man/man5/natsplice-agent.yaml.5.gz ./etc/natsplice/broker.yaml; do
		grep -q " $f\$" "$TMP/contents" || fail "$f is not in the package"
	done
	dpkg-deb -I "$deb" postinst | grep 'adduser --system' >/dev/null ||
		fail "the postinst does not create the natsplice user"
	grep -q '^E:' "$TOP/build/deb/lintian.txt" && fail "lintian: $(grep '^E:' "$TOP/build/deb/lintian.txt")"
	return 0
}

run_tests
