# shellcheck shell=bash
# NAT routers of every kind (RFC 4787 / 5382 terms), for the tests of NAT
# behaviour discovery and hole punching; sourced after lib.sh and sys.sh.
# nat_router (sys.sh) made each NAT a masquerading router between br0 and
# a LAN with one host; nat_type replaces its rules:
#
#   TYPE                  mapping  filtering  port kept
#   full-cone             ei       ei         yes   1:1 SNAT, everything in DNATed;
#                                                   hairpins (the only NAT here that does)
#   restricted-cone       ei       ad         yes   SNAT; in only from an address the
#                                                   mapping has sent to (any port)
#   port-restricted-cone  ei       apd        yes   plain SNAT: conntrack lets replies in
#   symmetric             apd      apd        no    masquerade random,fully-random
#   outbound-only         (no NAT) apd        yes   the host has a public address; a
#                                                   firewall lets only replies in
#
# (public: a host on br0 itself; nothing to set.) Linux NAT keeps the
# source port when it is free, which makes SNAT endpoint-independent and
# port-preserving. The restricted cone keeps a set of (remote address,
# port) pairs, the port being the host's source port (kept by the SNAT,
# so also the mapped port), filled from the packets going out; a new
# connection coming in is DNATed to the host only when its (source
# address, destination port) is in the set. The rule that fills the set
# must match the outgoing direction only (iifname lan0): matched on every
# forwarded packet it also stores the replies' (LAN address, port), which
# looks like nft storing other fields than the ones named.

# The outbound-only hosts' public subnets, routed through their router.
OUTBOUND_NET_A=198.51.100.0/25	OUTBOUND_HOST_A=198.51.100.2
OUTBOUND_NET_B=198.51.100.128/25	OUTBOUND_HOST_B=198.51.100.130

# outbound_routes NS...: the routes to the outbound-only subnets (via NATA,
# NATB) on hosts of the Internet.
outbound_routes() {
	local ns

	for ns in "$@"; do
		ip -n "$ns" route replace "$OUTBOUND_NET_A" via "$NATA4"
		ip -n "$ns" route replace "$OUTBOUND_NET_B" via "$NATB4"
	done
}

# nat_type NAT HOST WAN4 HOST4 TYPE [PUBLIC4 PUBNET]: NAT's rules as TYPE;
# HOST (LAN address HOST4) uses PUBLIC4 of PUBNET as its source for
# outbound-only and its LAN address otherwise.
nat_type() {
	local nat=$1 host=$2 wan=$3 lan=$4 type=$5 pub=${6:-} pubnet=${7:-} gw rules

	gw=${lan%.*}.1
	nsx "$host" ip route replace default via "$gw" src "$lan"
	case "$type" in
	full-cone)
		# (and it hairpins: the host's own packets to the public
		# address come back to it from the public address)
		nsx "$nat" sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.lan0.send_redirects=0
		rules="
		chain inbound { type nat hook prerouting priority dstnat; policy accept;
			iifname { \"eth0\", \"lan0\" } ip daddr $wan dnat to $lan; }
		chain post { type nat hook postrouting priority srcnat; policy accept;
			oifname \"eth0\" ip saddr $lan snat to $wan
			iifname \"lan0\" oifname \"lan0\" ip saddr $lan snat to $wan; }" ;;
	restricted-cone)
		rules="
		set peers { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 10m; }
		chain out { type filter hook forward priority filter; policy accept;
			iifname \"lan0\" oifname \"eth0\" meta l4proto { tcp, udp } update @peers { ip daddr . th sport }; }
		chain inbound { type nat hook prerouting priority dstnat; policy accept;
			iifname \"eth0\" ip daddr $wan meta l4proto { tcp, udp } ip saddr . th dport @peers dnat to $lan; }
		chain post { type nat hook postrouting priority srcnat; policy accept;
			oifname \"eth0\" ip saddr $lan snat to $wan; }" ;;
	port-restricted-cone)
		rules="
		chain post { type nat hook postrouting priority srcnat; policy accept;
			oifname \"eth0\" ip saddr $lan snat to $wan; }" ;;
	symmetric)
		rules="
		chain post { type nat hook postrouting priority srcnat; policy accept;
			oifname \"eth0\" masquerade random,fully-random; }" ;;
	outbound-only)
		[ -n "$pub" ] || fail "nat_type $type needs the host's public address"
		nsx "$host" ip addr replace "$pub/32" dev eth0
		nsx "$host" ip route replace default via "$gw" src "$pub"
		nsx "$nat" ip route replace "$pubnet" via "${lan}" dev lan0
		rules="
		chain outbound { type filter hook forward priority filter; policy accept;
			iifname \"eth0\" ct state established,related accept
			iifname \"eth0\" drop; }" ;;
	*) fail "nat_type: unknown type '$type'" ;;
	esac
	nsx "$nat" nft flush ruleset
	nsx "$nat" nft -f - <<<"table ip nat { $rules
	}" || fail "nat_type $type: nft refused the rules"
	# a fresh start: no connection tracked under the old rules counts
	nsx "$nat" sh -c 'command -v conntrack >/dev/null && conntrack -F' >/dev/null 2>&1 || true
}

# nat_type_hairpin TYPE: whether a host behind TYPE reaches itself at its
# public address (TCP and UDP): without NAT it is its own address.
nat_type_hairpin() {
	case "$1" in
	public | full-cone | outbound-only) echo yes ;;
	*) echo no ;;
	esac
}

# nat_type_expect TYPE: what discovery should find behind TYPE, as
# "nat=yes|no mapping=ei|ad|apd filtering=ei|ad|apd preserve=yes|no"
# (the same for TCP and UDP).
nat_type_expect() {
	case "$1" in
	public) echo "nat=no mapping=ei filtering=ei preserve=yes" ;;
	full-cone) echo "nat=yes mapping=ei filtering=ei preserve=yes" ;;
	restricted-cone) echo "nat=yes mapping=ei filtering=ad preserve=yes" ;;
	port-restricted-cone) echo "nat=yes mapping=ei filtering=apd preserve=yes" ;;
	symmetric) echo "nat=yes mapping=apd filtering=apd preserve=no" ;;
	outbound-only) echo "nat=no mapping=ei filtering=apd preserve=yes" ;;
	esac
}
