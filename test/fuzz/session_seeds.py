#!/usr/bin/env python3
# Writes corpus/fuzz_session/*.bin: valid step sequences for fuzz_session
# (publish, connect, accept/reject, splice ready/peer/done/error, flows,
# disconnects, timers). Step format: fuzz_session.c. Run from test/fuzz/.
import struct

def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v

def msg(typ, *attrs):
    body = b"".join(attrs)
    return struct.pack("!BBHI", 1, typ, 0, len(body)) + body

def u8(t, v): return attr(t, bytes([v]))
def u16(t, v): return attr(t, struct.pack("!H", v))
def u32(t, v): return attr(t, struct.pack("!I", v))
def u64(t, v): return attr(t, struct.pack("!Q", v))
def s(t, v): return attr(t, v.encode())
def step(peer, m): return bytes([peer]) + struct.pack("!H", len(m)) + m
def act(peer, op): return bytes([(op << 3) | peer])

# include/ns_proto.h
REQ, SVC, PROTO, SESSION, SPLICE_ID, RELAY_ADDR = 15, 16, 17, 19, 29, 11
PORT_A, PORT_B, BAB, BBA, PK, CODE, TEXT, TOKEN = 30, 31, 32, 33, 34, 13, 14, 36
TRANSPORT, PARENT, PORT = 37, 38, 39
EXPOSE, PREFIX, MAX_CONNS, PUBLIC_ID, PEER_ADDR = 42, 43, 44, 45, 22
PUBLISH, UNPUBLISH, LIST, CONNECT, ACCEPT, REJECT = 7, 8, 9, 11, 13, 14
SPLICE_READY, SPLICE_PEER, SPLICE_DONE, ERROR, HEARTBEAT, FLOW = 17, 18, 19, 4, 5, 20
OK, PUBLIC_CLIENT = 6, 24

pub = step(0, msg(PUBLISH, u32(REQ, 1), s(SVC, "ssh"), u8(PROTO, 6)))
pubu = step(0, msg(PUBLISH, u32(REQ, 2), s(SVC, "dns"), u8(PROTO, 17)))
con = step(1, msg(CONNECT, u32(REQ, 7), s(SVC, "a1/ssh"), u8(PROTO, 6)))
conu = step(1, msg(CONNECT, u32(REQ, 8), s(SVC, "a1/dns"), u8(PROTO, 17), u8(TRANSPORT, 17)))
acc = step(0, msg(ACCEPT, u64(SESSION, 0)))
rej = step(0, msg(REJECT, u64(SESSION, 0), u32(CODE, 3), s(TEXT, "no")))
raddr = attr(RELAY_ADDR, bytes([2, 0, 0, 0, 198, 51, 100, 20]) + bytes(12))
ready = step(3, msg(SPLICE_READY, u64(SESSION, 0), u32(SPLICE_ID, 5), raddr,
                    u16(PORT_A, 20001), u16(PORT_B, 20002)))
readyu = step(3, msg(SPLICE_READY, u64(SESSION, 0), u32(SPLICE_ID, 6), raddr,
                     u16(PORT_A, 20003), u16(PORT_B, 20004), attr(TOKEN, bytes(range(16)))))
peer_ = step(3, msg(SPLICE_PEER, u64(SESSION, 0), u16(PORT_A, 40000)))
done = step(3, msg(SPLICE_DONE, u64(SESSION, 0), u32(SPLICE_ID, 5), u64(BAB, 1000),
                   u64(BBA, 2000), u64(PK, 30), s(TEXT, "fin")))
rerr = step(3, msg(ERROR, u64(SESSION, 0), u32(CODE, 5), s(TEXT, "busy")))
flow = step(1, msg(FLOW, u32(REQ, 9), u64(PARENT, 0), u16(PORT, 2000), u8(PROTO, 6)))
lst = step(2, msg(LIST, u32(REQ, 3)))
# public ports: a1 exposes web on 8080 (PUBLIC_ID 1), r1 opens it (REQ_ID 1)
def expose(port, *extra):
    return attr(EXPOSE, u16(PORT, port) + b"".join(extra))
pubx = step(0, msg(PUBLISH, u32(REQ, 5), s(SVC, "web"), u8(PROTO, 6),
                   expose(8080, s(PREFIX, "192.0.2.0/24"), u32(MAX_CONNS, 1))))
pubx0 = step(0, msg(PUBLISH, u32(REQ, 6), s(SVC, "web"), u8(PROTO, 6), expose(0)))
pubx_denied = step(1, msg(PUBLISH, u32(REQ, 7), s(SVC, "web"), u8(PROTO, 6), expose(8080)))
ropen = step(3, msg(OK, u32(REQ, 1)))
rrefuse = step(3, msg(ERROR, u32(REQ, 1), u32(CODE, 11), s(TEXT, "busy")))
caddr = attr(PEER_ADDR, bytes([2, 0, 0x15, 0xb3, 192, 0, 2, 9]) + bytes(12))
client = step(3, msg(PUBLIC_CLIENT, u32(PUBLIC_ID, 1), u32(SPLICE_ID, 9), u16(PORT_A, 20009), caddr))
client2 = step(3, msg(PUBLIC_CLIENT, u32(PUBLIC_ID, 1), u32(SPLICE_ID, 10), u16(PORT_A, 20010), caddr))
pdone = step(3, msg(SPLICE_DONE, u64(SESSION, 0), u32(SPLICE_ID, 9), u64(BAB, 10), u64(BBA, 20),
                    u64(PK, 3), s(TEXT, "fin")))
unpub = step(0, msg(UNPUBLISH, u32(REQ, 4), s(SVC, "ssh")))

seeds = {
    "relay_ok": pub + con + acc + ready + done,
    "relay_udp": pubu + conu + acc + readyu + done,
    "relay_pure": pub + con + acc + ready + peer_ + done,
    "reject": pub + con + rej,
    "relay_error": pub + con + acc + rerr,
    "prov_gone": pub + con + act(0, 4) + act(0, 7) + pub + con,
    "relay_gone": pub + con + acc + act(3, 4) + act(3, 7) + ready,
    "sub_gone": pub + con + acc + ready + act(1, 4) + done,
    "timeout": pub + con + act(0, 6) + con + acc + act(0, 6),
    "flow": pub + con + acc + ready + flow + acc + ready + done,
    "list_unpublish": pub + lst + unpub + con,
    "hold": pub + act(0, 5) + act(3, 5) + act(4, 5) + con,
    "public_ok": pubx + ropen + client + client2 + pdone + client2,
    "public_refused": pubx + rrefuse + act(3, 4) + act(3, 7) + ropen + client,
    "public_prov_gone": pubx + ropen + client + act(0, 4) + client2 + act(0, 7) + pubx0 + ropen + pdone,
    "public_denied": pubx_denied + pubx + unpub + pubx0 + ropen + client,
    "stranger": step(4, msg(HEARTBEAT)) + step(4, msg(PUBLISH, u32(REQ, 1), s(SVC, "x"), u8(PROTO, 6))),
}
for k, v in seeds.items():
    open(f"corpus/fuzz_session/{k}.bin", "wb").write(v)
