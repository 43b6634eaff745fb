#!/bin/bash
# TLS 1.3 on the control connections (README "Control connection security"):
# plain text only with insecure: true on both ends, the broker pinned by its
# fingerprint or verified against a CA, and a handshake that stalls closed by
# the broker's login deadline while others log in; a message forged into an
# established connection with the right sequence numbers (test/tools/nstap)
# closes it instead of being obeyed, as it is in plain text. Every other test
# of the system runs over TLS too (sys.sh pins the broker by default).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

NSTAP=${NSTAP:-$TOP/test/tools/nstap}
NSMSG=${NSMSG:-$TOP/test/tools/nsmsg}

NSTAP=${NSTAP:-$TOP/test/tools/nstap}
NSMSG=${NSMSG:-$TOP/test/tools/nsmsg}

# plain_agent NAME SECRET: an agent with insecure: true in HB (not waiting
# for "ready"); AGENT_PID, AGENT_LOG.
plain_agent() {
	local conf=$TMP/agent-$1.yaml

	printf 'broker: %s:%s\nname: %s\nsecret: %s\ninsecure: true\n' "$BROKER4" "$BROKER_PORT" \
		"$1" "$2" >"$conf"
	AGENT_LOG=$TMP/agent-$1.log
	bg "$HB" "$AGENT_LOG" "$AGENT_BIN" -f "$conf" -v
	AGENT_PID=$BG_PID
}

metric() {
	broker_api /metrics | awk -v m="$1" '$1 == m { print $2 }'
}

# (a) A plain-text agent: refused by a broker without insecure (with the
# log line saying how to allow it), served by one with it, and the login
# logged as a warning and counted.
test_plain_needs_insecure() {
	need_system
	topo_nat
	start_broker
	plain_agent laptop laptop-secret
	wait_for_line "$BROKER_LOG" \
		"plain-text control connection from $NATB4:[0-9]+ refused \(set insecure: true to allow\)" \
		20 || fail "the broker did not refuse the plain-text agent: $(tail -n 3 "$BROKER_LOG")"
	wait_for_line "$AGENT_LOG" "speaks TLS only" 10 ||
		fail "the agent did not say why: $(tail -n 3 "$AGENT_LOG")"
	! grep -q "ready" "$AGENT_LOG" || fail "the plain-text agent logged in"
	[ "$(metric natsplice_broker_plain_refused_total)" -ge 1 ] || fail "refusal not counted"
	[ "$(metric natsplice_broker_logins_insecure_total)" = 0 ] || fail "insecure login counted"

	kill -TERM "$BROKER_PID"
	wait_pid "$BROKER_PID" 10 || fail "the broker did not stop"
	start_broker "insecure: true"
	grep -q "insecure: true: plain-text agents and relays are accepted" "$BROKER_LOG" ||
		fail "the broker did not warn about insecure: true"
	# the same agent, still retrying, now gets in; a pinned one too
	wait_for_line "$AGENT_LOG" "ready" 20 "$AGENT_PID" ||
		fail "the plain-text agent did not log in: $(tail -n 3 "$AGENT_LOG")"
	grep -q "plain text: insecure" "$AGENT_LOG" || fail "the agent does not say it is plain text"
	wait_for_line "$BROKER_LOG" "warning: agent laptop logged in over plain text from $NATB4" 5 ||
		fail "the broker did not warn about the plain-text login"
	start_agent "$HA" home-nas nas-secret ""
	grep -q "TLS 1.3" "$AGENT_LOG" || fail "the pinned agent is not on TLS"
	[ "$(metric natsplice_broker_logins_insecure_total)" = 1 ] ||
		fail "insecure logins counted: $(metric natsplice_broker_logins_insecure_total), not 1"
}

# (b) A wrong pin: the agent refuses the broker (one warning, however many
# retries) and never logs in; the right pin logs in.
test_wrong_fingerprint() {
	local wrong n

	need_system
	topo_nat
	start_broker
	wrong=sha256:$(printf '%064d' 0)
	printf 'broker: %s:%s\nname: laptop\nsecret: laptop-secret\nbroker-fingerprint: %s\n' \
		"$BROKER4" "$BROKER_PORT" "$wrong" >"$TMP/wrong.yaml"
	bg "$HB" "$TMP/wrong.log" "$AGENT_BIN" -f "$TMP/wrong.yaml" -v
	wait_for_line "$TMP/wrong.log" \
		"broker certificate $BROKER_FP does not match broker-fingerprint $wrong" 20 ||
		fail "no mismatch line: $(tail -n 3 "$TMP/wrong.log")"
	# at least three attempts (0.5 + 1 + 2 s of backoff), one warning
	wait_until 20 sh -c "[ \$(grep -c 'reconnecting in' '$TMP/wrong.log') -ge 3 ]" ||
		fail "the agent did not retry"
	n=$(grep -c "warning: .*does not match broker-fingerprint" "$TMP/wrong.log")
	[ "$n" = 1 ] || fail "the mismatch was warned $n times"
	! grep -q "ready" "$TMP/wrong.log" || fail "the agent logged in with a wrong pin"
	! grep -q "agent laptop logged in" "$BROKER_LOG" || fail "the broker saw a login"
	_lib_kill "$BG_PID"
	start_agent "$HB" laptop laptop-secret ""
	grep -q "logged in to .*TLS 1.3" "$AGENT_LOG" || fail "the right pin did not log in over TLS"
}

# (c) The broker's certificate from a CA (made here with the openssl CLI):
# the agent and the relay verify the chain and the broker's IP; a name the
# certificate does not carry fails the handshake.
test_ca_verified() {
	local ext=$TMP/san.ext

	need_system
	need openssl
	topo_nat
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=natsplice-test-ca -keyout "$TMP/ca.key" -out "$TMP/ca.crt" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj /CN=broker.test -keyout "$TMP/broker.key" -out "$TMP/broker.csr" 2>/dev/null
	printf 'subjectAltName=DNS:broker.test,IP:%s\n' "$BROKER4" >"$ext"
	openssl x509 -req -in "$TMP/broker.csr" -CA "$TMP/ca.crt" -CAkey "$TMP/ca.key" \
		-CAcreateserial -days 2 -extfile "$ext" -out "$TMP/broker.crt" 2>/dev/null
	start_broker
	[ "$BROKER_FP" = "sha256:$(openssl x509 -in "$TMP/broker.crt" -outform der |
		sha256sum | cut -d' ' -f1)" ] || fail "the fingerprint is not SHA-256 over the DER"
	start_agent "$HA" home-nas nas-secret "broker-ca: $TMP/ca.crt
broker-name: $BROKER4"
	grep -q "TLS 1.3" "$AGENT_LOG" || fail "not TLS"
	RELAY4=$SRELAY4 RELAY6=2001:db8::20 RELAY_PORTS=20000-20999 \
		start_relay tc --broker "$BROKER4:$BROKER_PORT" --name relay1 --secret relay-secret \
		--broker-ca "$TMP/ca.crt" --broker-name broker.test
	wait_for_line "$RELAY_LOG" "registered with broker" 20 "$RELAY_PID" ||
		fail "the relay did not register: $(tail -n 3 "$RELAY_LOG")"
	# a name not in the certificate
	printf 'broker: %s:%s\nname: laptop\nsecret: laptop-secret\nbroker-ca: %s\nbroker-name: other.test\n' \
		"$BROKER4" "$BROKER_PORT" "$TMP/ca.crt" >"$TMP/other.yaml"
	bg "$HB" "$TMP/other.log" "$AGENT_BIN" -f "$TMP/other.yaml" -v
	wait_for_line "$TMP/other.log" "certificate verify failed" 20 ||
		fail "no verify failure for a wrong name: $(tail -n 3 "$TMP/other.log")"
	! grep -q "ready" "$TMP/other.log" || fail "logged in to a broker of another name"
}

# (d) Connections that never finish the handshake (silent, and half a
# ClientHello) are closed by the broker at its login deadline; an agent logs
# in meanwhile.
test_stalled_handshake() {
	local start silent half

	need_system
	topo_nat
	start_broker "login-timeout: 3"
	start=$SECONDS
	bg "$PUB" "$TMP/silent.log" bash -c \
		"exec 3<>/dev/tcp/$BROKER4/$BROKER_PORT && cat <&3 >/dev/null; echo closed"
	silent=$BG_PID
	bg "$PUB" "$TMP/half.log" bash -c \
		"exec 3<>/dev/tcp/$BROKER4/$BROKER_PORT && printf '\\026\\003\\001\\000\\360\\001\\000' >&3 &&
		 cat <&3 >/dev/null; echo closed"
	half=$BG_PID
	start_agent "$HB" laptop laptop-secret ""
	wait_pid "$silent" 10 || fail "the silent connection was not closed"
	wait_pid "$half" 10 || fail "the half handshake was not closed"
	[ $((SECONDS - start)) -le 8 ] || fail "closing took $((SECONDS - start)) s (deadline 3 s)"
	[ "$(grep -c 'closed: no TLS handshake within 3 s' "$BROKER_LOG")" = 2 ] ||
		fail "the broker did not log both: $(grep 'no TLS' "$BROKER_LOG")"
	[ "$(metric natsplice_broker_tls_failed_total)" = 2 ] || fail "not counted"
	kill -0 "$AGENT_PID" || fail "the agent died"
	grep -q "agent laptop logged in" "$BROKER_LOG" || fail "the agent did not log in"
}

# The fingerprint command prints exactly one line, makes the files once
# (the key 0600) and prints the same fingerprint every time.
test_fingerprint_command() {
	local fp1 fp2

	need_system
	printf 'tls-cert: %s/pki/b.crt\ntls-key: %s/pki/b.key\n' "$TMP" "$TMP" >"$TMP/b.yaml"
	fp1=$("$BROKER_BIN" --fingerprint -f "$TMP/b.yaml" 2>/dev/null) || fail "status $?"
	fp2=$("$BROKER_BIN" --fingerprint -f "$TMP/b.yaml" 2>/dev/null) || fail "status $?"
	[[ $fp1 =~ ^sha256:[0-9a-f]{64}$ ]] || fail "printed '$fp1'"
	[ "$fp1" = "$fp2" ] || fail "the fingerprint changed: $fp1 then $fp2"
	[ "$(stat -c %a "$TMP/pki/b.key")" = 600 ] || fail "key mode $(stat -c %a "$TMP/pki/b.key")"
	rm "$TMP/pki/b.key"
	! "$BROKER_BIN" --fingerprint -f "$TMP/b.yaml" >/dev/null 2>"$TMP/err" ||
		fail "a certificate without its key was accepted"
	grep -q "exists but" "$TMP/err" || fail "no clear error: $(cat "$TMP/err")"
	# an agent without a way to authenticate the broker is refused at load
	printf 'broker: 192.0.2.1\nname: a\nsecret: s\n' >"$TMP/a.yaml"
	! "$AGENT_BIN" -n -f "$TMP/a.yaml" 2>"$TMP/err" || fail "an agent without a pin was accepted"
	grep -q "natsplice-broker --fingerprint" "$TMP/err" || fail "no hint: $(cat "$TMP/err")"
}

# The relay's broker connection: its local port.
relay_broker_port() {
	nsx "$RELAY" ss -tnH state established dst "$BROKER4" |
		awk -v b="$BROKER4:$BROKER_PORT" '$4 == b && !p { split($3, l, ":"); print l[2]; p = 1 }'
}

# inject_into_relay HEX: one segment from the broker into the relay's control
# connection, on the bridge port facing the relay, with the sequence numbers
# of the broker's last heartbeat (hold-time 3: one a second).
inject_into_relay() {
	local port

	[ -x "$NSTAP" ] || skip "test/tools/nstap is not built"
	port=$(relay_broker_port)
	[ -n "$port" ] || fail "no broker connection in the relay's namespace"
	nsx "$INET" "$NSTAP" inject -i vrelay --from "$BROKER4:$BROKER_PORT" \
		--to "$SRELAY4:$port" --hex "$1" --wait 20 --learn from >"$TMP/inject.log" 2>&1 ||
		fail "nstap injected nothing: $(tail -n 2 "$TMP/inject.log")"
}

# A SPLICE_REQUEST forged into the relay's TLS connection with the right
# sequence numbers: the relay closes that connection (saying why) and logs in
# again; it makes no splice. The same into a plain-text connection is obeyed
# (next test): what TLS is for.
test_injected_message_closes() {
	local lost

	need_system
	topo_nat
	start_broker "hold-time: 3"
	start_sys_relay tc
	inject_into_relay "$("$NSMSG" splice-request 0x5eed)"
	wait_for_line "$RELAY_LOG" "broker connection lost: " 20 ||
		fail "the relay did not drop the connection: $(tail -n 3 "$RELAY_LOG")"
	lost=$(grep -m 1 "broker connection lost: " "$RELAY_LOG")
	[[ $lost != *"closed by the broker"* ]] ||
		fail "the relay's side did not notice the forged record (the broker closed first)"
	echo "$lost" >&2
	wait_until 30 sh -c "[ \$(grep -c 'registered with broker' '$RELAY_LOG') -ge 2 ]" ||
		fail "the relay did not log in again"
	! grep -q "for broker session 0000000000005eed" "$RELAY_LOG" ||
		fail "the forged SPLICE_REQUEST was obeyed"
	[ "$(splice_count)" = 0 ] || fail "the relay has $(splice_count) splices"
}

test_injected_message_plain_obeyed() {
	need_system
	topo_nat
	start_broker "hold-time: 3
insecure: true"
	start_sys_relay tc --insecure
	inject_into_relay "$("$NSMSG" splice-request 0x5eed)"
	wait_for_line "$RELAY_LOG" "for broker session 0000000000005eed" 20 ||
		fail "the forged request did not reach the plain-text relay (nstap or nsmsg broken?)"
}

run_tests
