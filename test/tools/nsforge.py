#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""nsforge: IPv4 TCP segments with a forged source, for the spoofing tests
(test_synrace.sh, test_spoof.sh). Needs CAP_NET_RAW in the sending namespace.

  nsforge.py SRC SPORT DST DPORT FLAGS [--count N] [--data BYTES] [--spread CIDR]

FLAGS is the TCP flags byte (2 SYN, 4 RST, 17 FIN|ACK, 24 PSH|ACK). Sequence
and acknowledgment numbers are random; a SYN carries MSS 1460, SACK
permitted and window scale 7, as a real one does. Prints one line per
segment: "forged FLAGS SRC:SPORT -> DST:DPORT seq N". With --spread, each
segment comes from a random address of CIDR and a random port (a flood from
many forged sources; SRC and SPORT are ignored) and nothing is printed.
"""
import argparse, ipaddress, os, random, socket, struct


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def segment(src, sport, dst, dport, flags, data, ident):
    seq, ack = struct.unpack("!II", os.urandom(8))
    opts = b""
    if flags & 0x02:
        ack = 0
        # MSS 1460, SACK permitted, NOP, window scale 7, NOP NOP (to 4 bytes)
        opts = b"\x02\x04\x05\xb4" + b"\x04\x02" + b"\x01\x03\x03\x07" + b"\x01\x01"
    thl = 20 + len(opts)
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (thl // 4) << 4, flags,
                      64240, 0, 0) + opts
    c = csum(s + d + struct.pack("!BBH", 0, 6, thl + len(data)) + tcp + data)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:] + data
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident, 0, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp, seq


def main():
    ap = argparse.ArgumentParser(description="forged IPv4 TCP segments")
    ap.add_argument("src")
    ap.add_argument("sport", type=int)
    ap.add_argument("dst")
    ap.add_argument("dport", type=int)
    ap.add_argument("flags", type=int)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--data", type=int, default=0, help="payload bytes (random)")
    ap.add_argument("--spread", help="random sources from this IPv4 CIDR")
    a = ap.parse_args()
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    net = ipaddress.ip_network(a.spread) if a.spread else None
    for i in range(a.count):
        src, sport = a.src, a.sport
        if net:
            src = str(net[random.randrange(net.num_addresses)])
            sport = random.randrange(1024, 65536)
        pkt, seq = segment(src, sport, a.dst, a.dport, a.flags, os.urandom(a.data), i & 0xffff)
        try:
            r.sendto(pkt, (a.dst, 0))
        except BlockingIOError:
            continue
        if not net:
            print("forged %d %s:%d -> %s:%d seq %u" % (a.flags, src, sport, a.dst, a.dport, seq))


if __name__ == "__main__":
    main()
