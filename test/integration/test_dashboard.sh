#!/bin/bash
# The broker's dashboard (/, /dashboard/) in headless Chromium, checked
# against the API it reads, and `natsplice broker ...`, the admin command over
# the same API (issue 15).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sys.sh"

BROKER_URL=http://$BROKER_HTTP
WEB_SIZE=$((1 << 20))

# dash_bed: broker, relay, provider home-nas (web, ssh) and subscriber laptop;
# one download through the relay, finished (its bytes reported), and one
# connection held open (HOLD_PID): a live splice on the relay.
dash_bed() {
	need_system
	topo_nat
	start_broker
	start_sys_relay xdp
	random_file "$TMP/web.bin" "$WEB_SIZE"
	web_server "$HA" 8080 "$TMP/web.bin"
	start_agent "$HA" home-nas nas-secret 'publish:
  - { name: web, target: 127.0.0.1:8080, proto: tcp }
  - { name: ssh, target: 127.0.0.1:22, proto: tcp }'
	start_agent "$HB" laptop laptop-secret 'subscribe:
  - { service: home-nas/web, listen: 127.0.0.1:18080, proto: tcp, pool: 0 }'
	http_get "$HB" http://127.0.0.1:18080/ "$TMP/got.bin" || fail "download failed"
	cmp -s "$TMP/got.bin" "$TMP/web.bin" || fail "the download differs"
	wait_until 30 relayed_done ||
		fail "no finished relay session with bytes: $(broker_api /api/v1/sessions)"
	# the web server waits for a request that never comes: the tunnel stays
	bg "$HB" "$TMP/hold.log" sh -c 'sleep 600 | socat - TCP:127.0.0.1:18080'
	HOLD_PID=$BG_PID
	wait_until 30 relay_busy || fail "no live splice: $(broker_api /api/v1/relays)"
}

relayed_done() {
	broker_api /api/v1/sessions |
		jq -e --argjson n "$WEB_SIZE" \
			'any(.[]; .path == "relay" and .state == "closed" and .bytes >= $n)' >/dev/null
}

relay_busy() {
	broker_api /api/v1/relays |
		jq -e '.[0].active_splices == 1 and .[0].ports_in_use > 0' >/dev/null
}

# need_chromium: CHROMIUM, a headless Chromium that starts here, or skip.
need_chromium() {
	CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
	[ -n "$CHROMIUM" ] || skip "needs chromium (mk/deps.sh test installs it)"
	HOME=$TMP timeout 60 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu \
		--user-data-dir="$TMP/chromium-probe" --dump-dom about:blank \
		>"$TMP/chromium-probe.log" 2>&1 ||
		skip "chromium cannot run here: $(grep -v dbus "$TMP/chromium-probe.log" | tail -n 1)"
}

# browse URL dom|png OUT: Chromium in the broker's namespace (the API listens
# on its 127.0.0.1) loads URL and runs its scripts for 6 s of virtual time
# (the first fetches and a refresh), then writes the DOM or a screenshot.
browse() {
	local url=$1 mode=$2 out=$3 what=--dump-dom

	[ "$mode" = dom ] || what=--screenshot="$out"
	HOME=$TMP nsx "$BROKER" timeout 120 "$CHROMIUM" --headless=new --no-sandbox \
		--disable-gpu --no-first-run --user-data-dir="$TMP/chromium" \
		--window-size=1280,1150 --virtual-time-budget=6000 $what "$url" \
		>"$TMP/chromium-$mode.out" 2>"$TMP/chromium-$mode.log" ||
		fail "chromium failed on $url: $(grep -v dbus "$TMP/chromium-$mode.log" | tail -n 2)"
	[ "$mode" != dom ] || cp "$TMP/chromium-$mode.out" "$out"
}

# dom_rows FILE TABLE: the rows the page made in TABLE, one a line.
dom_rows() {
	tr -d '\n' <"$1" | grep -o "<table id=\"$2\">.*" | sed 's|</table>.*||; s|<tr|\n<tr|g' |
		grep '^<tr data-' || true
}

# dom_text FILE ID: the text of element ID.
dom_text() {
	tr -d '\n' <"$1" | grep -o "id=\"$2\">[^<]*" | cut -d'>' -f2
}

# check_dom FILE: the page's numbers and names against the API's JSON.
check_dom() {
	local dom=$1 agents services sessions relays n name id row

	grep -q '<body data-state="ok"' "$dom" ||
		fail "the page did not load the API: $(dom_text "$dom" status)"
	agents=$(broker_api /api/v1/agents)
	services=$(broker_api /api/v1/services)
	sessions=$(broker_api /api/v1/sessions)
	relays=$(broker_api /api/v1/relays)

	n=$(jq length <<<"$agents")
	[ "$(dom_text "$dom" n-agents)" = "$n" ] ||
		fail "page: $(dom_text "$dom" n-agents) agents, API: $n"
	[ "$(dom_rows "$dom" agents | wc -l)" = "$n" ] || fail "agents table: not $n rows"
	for name in $(jq -r '.[].name' <<<"$agents"); do
		dom_rows "$dom" agents | grep "data-name=\"$name\"" >/dev/null || fail "agent $name not shown"
	done

	n=$(jq length <<<"$services")
	[ "$n" = 2 ] || fail "the API has $n services, not 2"
	[ "$(dom_text "$dom" n-services)" = "$n" ] ||
		fail "page: $(dom_text "$dom" n-services) services, API: $n"
	for name in $(jq -r '.[].service' <<<"$services"); do
		dom_rows "$dom" services | grep "<td class=\"c-service\">$name</td>" >/dev/null ||
			fail "service $name not shown"
	done

	n=$(jq length <<<"$sessions")
	[ "$(dom_text "$dom" n-sessions)" = "$n" ] ||
		fail "page: $(dom_text "$dom" n-sessions) sessions, API: $n"
	[ "$(dom_rows "$dom" sessions | wc -l)" = "$n" ] || fail "sessions table: not $n rows"
	jq -r '.[] | "\(.id) \(.path) \(.encrypted) \(.bytes) \(.state)"' <<<"$sessions" |
	while read -r id path enc bytes state; do
		row=$(dom_rows "$dom" sessions | grep "data-id=\"$id\"") ||
			fail "session $id not shown"
		grep -q "class=\"c-path\">$path<" <<<"$row" || fail "session $id: path not $path"
		grep -q "class=\"c-state[^\"]*\"[^>]*>$state<" <<<"$row" ||
			fail "session $id: state not $state"
		grep -q "data-bytes=\"$bytes\"" <<<"$row" || fail "session $id: bytes not $bytes"
		[ "$enc" = true ] && enc=yes || enc=no
		grep -q "class=\"c-encrypted $enc\">$enc<" <<<"$row" ||
			fail "session $id: encrypted not $enc"
	done

	[ "$(dom_text "$dom" n-relays)" = "$(jq length <<<"$relays")" ] || fail "relay count"
	row=$(dom_rows "$dom" relays | grep 'data-name="relay1"') || fail "relay1 not shown"
	grep -q "class=\"c-splices num\">$(jq '.[0].active_splices' <<<"$relays")<" <<<"$row" ||
		fail "relay1: splices differ from the API's $(jq -c . <<<"$relays")"
	grep -q "class=\"c-ports num\">$(jq '.[0].ports_in_use' <<<"$relays")<" <<<"$row" ||
		fail "relay1: ports in use differ from the API's $(jq -c . <<<"$relays")"
}

test_dashboard() {
	need_chromium
	dash_bed

	# the files: compiled in, typed, confined to the broker's own origin
	nsx "$BROKER" curl -fsS -D "$TMP/js.hdr" -o "$TMP/app.js" "$BROKER_URL/dashboard/app.js"
	grep -qi '^content-type: text/javascript' "$TMP/js.hdr" || fail "app.js: $(cat "$TMP/js.hdr")"
	grep -qi "^content-security-policy: default-src 'self'" "$TMP/js.hdr" || fail "no CSP"
	cmp -s "$TMP/app.js" "$TOP/broker/www/app.js" || fail "app.js differs from broker/www"
	nsx "$BROKER" curl -fsS "$BROKER_URL/dashboard/" | grep '<title>natsplice broker' >/dev/null ||
		fail "/dashboard/ is not the page"

	browse "$BROKER_URL/" dom "$TMP/dom.html"
	check_dom "$TMP/dom.html"
	browse "$BROKER_URL/" png "$TMP/dashboard.png"
	[ "$(head -c 8 "$TMP/dashboard.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
		fail "the screenshot is not a PNG"
	[ "$(stat -c %s "$TMP/dashboard.png")" -gt 20000 ] || fail "the screenshot is (nearly) empty"
	artifact "$TMP/dashboard.png"
	artifact "$TMP/dom.html"

	# the page sends the token of its #fragment with every API request
	# (the broker does not check it yet; a logging proxy sees the requests
	# and writes one line per request, whole: socat -v's forked children
	# interleaved their logs mid-line, which made counting flaky)
	log_proxy 9771 9770 "$TMP/proxy.req"
	browse "http://127.0.0.1:9771/#token=dash-s3cret" dom "$TMP/dom-token.html"
	grep -q '<body data-state="ok"' "$TMP/dom-token.html" || fail "the page failed via the proxy"
	for api in agents services relays sessions; do
		grep -q "^GET /api/v1/$api[ ?]" "$TMP/proxy.req" || fail "no GET /api/v1/$api"
	done
	n_api=$(grep -c " /api/v1/" "$TMP/proxy.req") || true
	n_tok=$(grep -c " auth=Bearer dash-s3cret$" "$TMP/proxy.req") || true
	[ "$n_tok" -ge "$n_api" ] ||
		fail "$n_api API requests, only $n_tok with the token: $(cat "$TMP/proxy.req")"
	[ "$n_tok" = "$n_api" ] ||
		fail "the token left the browser outside the API requests ($n_tok for $n_api)"
}

# log_proxy PORT UPSTREAM FILE: an HTTP proxy on the broker's 127.0.0.1:PORT
# to 127.0.0.1:UPSTREAM that appends a line "METHOD PATH auth=VALUE" to FILE
# for each request (bodiless requests: the page only GETs).
log_proxy() {
	cat >"$TMP/log_proxy.py" <<-'PY'
	import socket, sys, threading
	port, upstream, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
	lock = threading.Lock()
	def note(head):
	    lines = head.decode("latin-1").split("\r\n")
	    auth = "-"
	    for l in lines[1:]:
	        k, _, v = l.partition(":")
	        if k.strip().lower() == "authorization":
	            auth = v.strip()
	    req = lines[0].split(" ")
	    with lock, open(path, "a") as f:
	        f.write("%s %s auth=%s\n" % (req[0], req[1] if len(req) > 1 else "", auth))
	def down(src, dst):
	    try:
	        while True:
	            b = src.recv(65536)
	            if not b:
	                break
	            dst.sendall(b)
	    except OSError:
	        pass
	    try:
	        dst.shutdown(socket.SHUT_WR)
	    except OSError:
	        pass
	def conn(c):
	    u = socket.create_connection(("127.0.0.1", upstream))
	    threading.Thread(target=down, args=(u, c), daemon=True).start()
	    buf = b""
	    try:
	        while True:
	            b = c.recv(65536)
	            if not b:
	                break
	            buf += b
	            while b"\r\n\r\n" in buf:
	                head, _, buf = buf.partition(b"\r\n\r\n")
	                note(head)
	                u.sendall(head + b"\r\n\r\n")
	    except OSError:
	        pass
	    try:
	        u.shutdown(socket.SHUT_WR)
	    except OSError:
	        pass
	s = socket.socket()
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind(("127.0.0.1", port))
	s.listen(64)
	while True:
	    c, _ = s.accept()
	    threading.Thread(target=conn, args=(c,), daemon=True).start()
	PY
	bg "$BROKER" "$TMP/log_proxy.log" python3 "$TMP/log_proxy.py" "$1" "$2" "$3"
	wait_until 10 nsx "$BROKER" sh -c "ss -ltn | grep -q 127.0.0.1:$1"
}

# fake_api PORT STATUS: a server on the broker's 127.0.0.1:PORT answering
# every request with STATUS; the requests are logged to $TMP/fake-PORT.req.
fake_api() {
	local port=$1 status=$2 script=$TMP/fake-$1.sh

	cat >"$script" <<-SH
	#!/bin/sh
	while IFS= read -r line; do
		printf '%s\n' "\$line" >>"$TMP/fake-$port.req"
		case "\$line" in "\$(printf '\\r')"|"") break ;; esac
	done
	printf 'HTTP/1.0 %s\r\nContent-Length: 0\r\n\r\n' "$status"
	SH
	chmod +x "$script"
	bg "$BROKER" "$TMP/fake-$port.log" socat TCP-LISTEN:"$port",bind=127.0.0.1,fork,reuseaddr \
		EXEC:"$script"
	wait_until 10 nsx "$BROKER" sh -c "ss -ltn | grep -q 127.0.0.1:$port"
}

ctl() {
	nsx "$BROKER" "$NATSPLICE" "$@"
}

test_broker_command() {
	local out n name

	dash_bed

	# text: a heading, then one row per object (the default URL is the bed's)
	out=$(ctl broker agents)
	head -n 1 <<<"$out" | grep -Eq '^NAME +ADDRESS +REACHABLE +SERVICES +SINCE$' ||
		fail "agents heading: $(head -n 1 <<<"$out")"
	n=$(broker_api /api/v1/agents | jq length)
	[ "$(($(wc -l <<<"$out") - 1))" = "$n" ] || fail "not $n agent rows: $out"
	for name in home-nas laptop; do
		grep -Eq "^$name +203\.0\.113\.10[12]:[0-9]+ " <<<"$out" || fail "no row for $name: $out"
	done
	grep -Eq '^home-nas .* (web,ssh|ssh,web) ' <<<"$out" || fail "home-nas's services: $out"
	out=$(ctl broker serv)		# a prefix
	grep -Eq '^home-nas/ssh +tcp +true +false$' <<<"$out" || fail "services: $out"
	out=$(ctl broker relays)
	grep -Eq "^relay1 +$SRELAY4 +1 +0 +[1-9][0-9]* +20" <<<"$out" || fail "relays: $out"
	out=$(NATSPLICE_BROKER_URL=$BROKER_URL/ ctl broker sessions --url "$BROKER_URL")
	n=$(broker_api /api/v1/sessions | jq length)
	[ "$(($(wc -l <<<"$out") - 1))" = "$n" ] || fail "not $n session rows: $out"
	# (bytes on the wire: the file, HTTP and the tunnel's own)
	grep -E "^[0-9a-f]{16} +home-nas/web +laptop +relay +(pure|passive) +relay1 +tcp +true +closed " \
		<<<"$out" | awk -v n="$WEB_SIZE" '$10 >= n { ok = 1 } END { exit !ok }' ||
		fail "no closed relayed session of $WEB_SIZE bytes or more: $out"

	# -j: the broker's JSON as it is
	diff <(ctl -j broker services | jq -S .) <(broker_api /api/v1/services | jq -S .) ||
		fail "-j broker services differs from the API"
	diff <(ctl -j broker relays | jq -S .) <(broker_api /api/v1/relays | jq -S .) ||
		fail "-j broker relays differs from the API"
	diff <(ctl -j broker sessions | jq -S '[.[] | {id, path, bytes, state}]') \
		<(broker_api /api/v1/sessions | jq -S '[.[] | {id, path, bytes, state}]') ||
		fail "-j broker sessions differs from the API"

	# discover on a broker with no discovery-address: says so, exit 1
	! out=$(ctl broker discover home-nas 2>&1) || fail "discover without discovery, yet exit 0"
	grep -q "the broker did not test home-nas: NAT discovery is off: broker.yaml has no discovery-address" \
		<<<"$out" || fail "discover: $out"

	# no broker there: exit 1, a plain reason, JSON error with -j
	! out=$(NATSPLICE_BROKER_URL=http://127.0.0.1:9 ctl broker agents 2>&1) ||
		fail "no broker, yet exit 0"
	grep -q "cannot reach the broker at http://127.0.0.1:9/api/v1/agents" <<<"$out" ||
		fail "unreachable: $out"
	! out=$(ctl -j broker agents --url http://127.0.0.1:9) || fail "no broker, yet exit 0 (-j)"
	jq -e '.error | test("cannot reach the broker")' <<<"$out" >/dev/null || fail "-j: $out"

	# 401: says a token is wanted, or that it was refused; sends it as a bearer
	fake_api 9772 "401 Unauthorized"
	! out=$(ctl broker relays --url http://127.0.0.1:9772 2>&1) || fail "401, yet exit 0"
	grep -q "answered 401 Unauthorized: it wants an API token" <<<"$out" || fail "401: $out"
	! out=$(NATSPLICE_BROKER_TOKEN=env-tok ctl broker relays --url http://127.0.0.1:9772 2>&1) ||
		fail "401, yet exit 0"
	grep -q "answered 401 Unauthorized: it refused the token" <<<"$out" || fail "401: $out"
	grep -q "Authorization: Bearer env-tok" "$TMP/fake-9772.req" || fail "no bearer token sent"
	! ctl broker relays --url http://127.0.0.1:9772 --token opt-tok 2>/dev/null ||
		fail "401, yet exit 0"
	grep -q "Authorization: Bearer opt-tok" "$TMP/fake-9772.req" || fail "--token not sent"
	grep -q "GET /api/v1/relays HTTP" "$TMP/fake-9772.req" || fail "the wrong request was sent"
}

run_tests
