// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The relay's BPF side: load both programs over one set of maps pinned in the
 * pin directory, attach them, and read/write the maps. Both programs are
 * netlink attachments, which outlive the daemon by themselves, and they hold
 * the maps (splice table, counters, port expectations, the splice store). A
 * restarted daemon takes the maps from the pin directory, or, when the pins
 * died with the bpffs a previous daemon mounted (`ip netns exec`), from the
 * programs on the device.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/capability.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "relay.h"
#include "entry.h"
#include "log.h"
#include "privs.h"
#include "util.h"
#include "kmod/natsplice_kfunc.h"
#include "xdp_relay.skel.h"
#include "tc_relay.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

struct relay_bpf {
	struct xdp_relay *xdp;
	struct tc_relay *tc;
	struct bpf_link *xdp_link;
	struct ring_buffer *rb;
	int table, counters, stats, ports, splices, track;
	int ncpus;
};

static int is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == (typeof(st.f_type))BPF_FS_MAGIC;
}

/* Make sure pin_dir exists on a bpffs: mount /sys/fs/bpf if it is missing
 * (`ip netns exec` remounts /sys and leaves it empty), then make the
 * directories below it. Elsewhere the parent must already be on a bpffs. */
static int prepare_pin_dir(const char *pin_dir)
{
	static const char root[] = "/sys/fs/bpf";
	char path[256];
	char *slash;

	snprintf(path, sizeof(path), "%s", pin_dir);
	if (!strncmp(path, root, strlen(root)) && path[strlen(root)] == '/') {
		if (!is_bpffs(root)) {
			if (mount("bpf", root, "bpf", 0, "mode=0700")) {
				log_err("mount bpffs on %s: %s", root, strerror(errno));
				return -errno;
			}
			log_info("mounted a bpffs on %s for the pins: it goes away with this "
				 "daemon's mount namespace (ip netns exec); the programs stay on "
				 "the device, and a restarted daemon takes the splices over from "
				 "them", root);
		}
		for (slash = path + strlen(root) + 1; (slash = strchr(slash, '/')); slash++) {
			*slash = '\0';
			if (mkdir(path, 0700) && errno != EEXIST) {
				log_err("mkdir %s: %s", path, strerror(errno));
				return -errno;
			}
			*slash = '/';
		}
	} else {
		slash = strrchr(path, '/');
		if (slash && slash != path)
			*slash = '\0';
		if (!is_bpffs(path)) {
			log_err("%s is not on a BPF filesystem (mount -t bpf bpf %s)", pin_dir,
				path);
			return -ENOTDIR;
		}
	}
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		log_err("mkdir %s: %s", pin_dir, strerror(errno));
		return -errno;
	}
	return 0;
}

static int pin_maps(struct bpf_object *obj, const char *pin_dir)
{
	struct bpf_map *map;
	char path[512];
	int err;

	bpf_object__for_each_map(map, obj) {
		if (bpf_map__is_internal(map))
			continue;	/* .rodata etc. belong to one program instance */
		snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_map__name(map));
		err = bpf_map__set_pin_path(map, path);
		if (err)
			return err;
	}
	return 0;
}

static void set_rodata(const struct relay_cfg *cfg, __u32 *addr4, __u32 *addr6)
{
	*addr4 = cfg->has4 ? cfg->addr4[0] : 0;
	memcpy(addr6, cfg->addr6, 16);
	if (!cfg->has6)
		memset(addr6, 0, 16);
}

/* An XDP link an earlier version pinned for the device (it attached XDP
 * through a link, and a link dies with its pin). */
static void link_pin_path(char *buf, size_t len, const char *pin_dir, const char *dev)
{
	char name[IF_NAMESIZE];

	relay_pin_name(dev, name, sizeof(name));
	snprintf(buf, len, "%s/xdp_link_%s", pin_dir, name);
}

/* The pin of the program attached to dev at hook ("xdp", "tc"): it marks the
 * device as one that uses the pinned maps (dev detach). */
static void prog_pin_path(char *buf, size_t len, const char *pin_dir, const char *hook,
			  const char *dev)
{
	char name[IF_NAMESIZE];

	relay_pin_name(dev, name, sizeof(name));
	snprintf(buf, len, "%s/prog_%s_%s", pin_dir, hook, name);
}

static int pin_prog(const char *pin_dir, const char *hook, const char *dev, int fd)
{
	char path[512];

	prog_pin_path(path, sizeof(path), pin_dir, hook, dev);
	unlink(path);
	if (bpf_obj_pin(fd, path)) {
		log_err("pin %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Is program id a relay program of that name? */
static bool prog_named(__u32 id, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = id ? bpf_prog_get_fd_by_id(id) : -1;
	bool ok;

	if (fd < 0)
		return false;
	ok = !bpf_obj_get_info_by_fd(fd, &info, &len) && !strcmp(info.name, name);
	close(fd);
	return ok;
}

/* The id of the relay program attached to ifindex at XDP or TC ingress, or 0. */
static __u32 dev_prog_id(int ifindex, bool xdp)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tq, .handle = TC_HANDLE, .priority = TC_PRIO);
	__u32 id = 0;

	if (xdp)
		return !bpf_xdp_query_id(ifindex, 0, &id) && prog_named(id, "xdp_relay") ? id : 0;
	if (bpf_tc_query(&hook, &tq))
		return 0;
	return prog_named(tq.prog_id, "tc_relay") ? tq.prog_id : 0;
}

bool relay_bpf_xdp_attached(const char *dev)
{
	int ifindex = if_nametoindex(dev);

	return ifindex && dev_prog_id(ifindex, true);
}

/*
 * Attach XDP as a netlink attachment, which stays on the device without a
 * process or a pin. A restarted daemon swaps its fresh program in atomically
 * (XDP_FLAGS_REPLACE), so the device never runs without one. A link that an
 * earlier version pinned gets the program through the link instead.
 */
static int attach_xdp(struct relay *r, struct relay_bpf *b)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
	int fd = bpf_program__fd(b->xdp->progs.xdp_relay), old_fd = -1, err;
	__u32 old = 0, flags = 0;
	char path[512];

	link_pin_path(path, sizeof(path), r->cfg.pin_dir, r->cfg.dev);
	b->xdp_link = access(path, F_OK) ? NULL : bpf_link__open(path);
	if (b->xdp_link) {
		err = bpf_link__update_program(b->xdp_link, b->xdp->progs.xdp_relay);
		if (!err) {
			log_info("xdp: replaced the program in pinned link %s", path);
			return pin_prog(r->cfg.pin_dir, "xdp", r->cfg.dev, fd);
		}
		log_warn("pinned link %s is stale (%s), attaching anew", path, strerror(-err));
		bpf_link__destroy(b->xdp_link);
		b->xdp_link = NULL;
		unlink(path);
	}
	if (!bpf_xdp_query_id(r->ifindex, 0, &old) && old) {
		if (!prog_named(old, "xdp_relay")) {
			log_err("attach XDP to %s: another XDP program (id %u) is attached",
				r->cfg.dev, old);
			return -EBUSY;
		}
		old_fd = bpf_prog_get_fd_by_id(old);
		opts.old_prog_fd = old_fd;
		flags = XDP_FLAGS_REPLACE;
	}
	err = bpf_xdp_attach(r->ifindex, fd, flags, &opts);
	if (old_fd >= 0)
		close(old_fd);
	if (err) {
		log_err("attach XDP to %s: %s", r->cfg.dev, strerror(-err));
		return err;
	}
	if (old)
		log_info("xdp: replaced the program on %s (id %u)", r->cfg.dev, old);
	return pin_prog(r->cfg.pin_dir, "xdp", r->cfg.dev, fd);
}

static int attach_tc(struct relay *r, struct relay_bpf *b)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = r->ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIO,
		    .flags = BPF_TC_F_REPLACE,
		    .prog_fd = bpf_program__fd(b->tc->progs.tc_relay));
	int err;

	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST) {
		log_err("create clsact on %s: %s", r->cfg.dev, strerror(-err));
		return err;
	}
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		log_err("attach TC to %s: %s", r->cfg.dev, strerror(-err));
		return err;
	}
	return pin_prog(r->cfg.pin_dir, "tc", r->cfg.dev, opts.prog_fd);
}

/* Is the module shim loaded, with every kfunc the programs call? Its BTF
 * under /sys/kernel/btf/ says so. */
static bool kmod_present(void)
{
	static const char *const kfuncs[] = {
		"bpf_ns_xdp_syn", "bpf_ns_skb_syn", "bpf_ns_xdp_synack",
		"bpf_ns_skb_synack", "bpf_ns_splice_done",
	};
	struct btf *base, *mod;
	bool ok = true;
	size_t i;

	if (access("/sys/kernel/btf/" NS_KMOD_NAME, F_OK))
		return false;
	base = btf__load_vmlinux_btf();
	if (!base)
		return false;
	mod = btf__parse_split("/sys/kernel/btf/" NS_KMOD_NAME, base);
	for (i = 0; mod && i < sizeof(kfuncs) / sizeof(kfuncs[0]); i++)
		ok &= btf__find_by_name_kind(mod, kfuncs[i], BTF_KIND_FUNC) > 0;
	if (!mod)
		ok = false;
	btf__free(mod);
	btf__free(base);
	return ok;
}

static int on_punt(void *ctx, void *data, size_t len)
{
	struct relay *r = ctx;

	if (len < sizeof(struct ns_punt)) {
		log_warn("short punt record (%zu bytes)", len);
		return 0;
	}
	r->ev.punt(r, data);
	return 0;
}

/*
 * The pins are gone but the programs are still on the device (a bpffs that
 * died with the daemon that mounted it): take the maps they use, so that the
 * splices they carry go on and the splice store is read back. A map of
 * another layout means another natsplice version: refuse before anything is
 * replaced, and say how to start over. 0 also when there is nothing to adopt.
 */
static int adopt_dev_maps(struct relay *r, struct bpf_object *obj)
{
	__u32 id = dev_prog_id(r->ifindex, true), ids[16], len, n, i;
	struct bpf_prog_info info = {};
	int pfd, fd, adopted = 0, err = 0;
	struct bpf_map *map;

	if (!id)
		id = dev_prog_id(r->ifindex, false);
	pfd = id ? bpf_prog_get_fd_by_id(id) : -1;
	if (pfd < 0)
		return 0;
	info.nr_map_ids = sizeof(ids) / sizeof(ids[0]);
	info.map_ids = (__u64)(unsigned long)ids;
	len = sizeof(info);
	n = bpf_obj_get_info_by_fd(pfd, &info, &len) ? 0 : info.nr_map_ids;
	for (i = 0; i < n && i < sizeof(ids) / sizeof(ids[0]) && !err; i++) {
		struct bpf_map_info mi = {};
		__u32 mlen = sizeof(mi);

		fd = bpf_map_get_fd_by_id(ids[i]);
		if (fd < 0)
			continue;
		map = bpf_obj_get_info_by_fd(fd, &mi, &mlen) ? NULL :
		      bpf_object__find_map_by_name(obj, mi.name);
		if (!map || bpf_map__is_internal(map) || !access(bpf_map__pin_path(map), F_OK)) {
			close(fd);
			continue;
		}
		if (mi.type != bpf_map__type(map) || mi.key_size != bpf_map__key_size(map) ||
		    mi.value_size != bpf_map__value_size(map) ||
		    mi.max_entries != bpf_map__max_entries(map)) {
			log_err("the dataplane on %s is of another natsplice version (map %s: "
				"key %u value %u entries %u, this version %u %u %u): this daemon "
				"cannot take its splices over. To start over, which drops them: "
				"natsplice dev detach %s --pin-dir %s", r->cfg.dev, mi.name,
				mi.key_size, mi.value_size, mi.max_entries, bpf_map__key_size(map),
				bpf_map__value_size(map), bpf_map__max_entries(map), r->cfg.dev,
				r->cfg.pin_dir);
			err = -ESTALE;
		} else {
			err = bpf_map__reuse_fd(map, fd);
			adopted += !err;
		}
		close(fd);
	}
	close(pfd);
	if (!err && adopted)
		log_info("took %d maps over from the programs on %s (their pins under %s "
			 "were gone)", adopted, r->cfg.dev, r->cfg.pin_dir);
	return err;
}

static int load_obj_error(const char *what, int err, const char *pin_dir)
{
	log_err("load %s programs: %s", what, strerror(-err));
	if (err == -EINVAL)
		log_err("if %s holds maps of another natsplice version, remove it "
			"(this drops live splices): natsplice dev detach DEV --pin-dir %s",
			pin_dir, pin_dir);
	return err;
}

/* max-bandwidth into the programs' policer (bpf/lib/police.h): also to no
 * cap, over what an earlier daemon left in the pinned map. */
static int set_police(struct relay *r, struct bpf_object *obj)
{
	struct ns_police p = {
		.ps_per_byte = r->bw.ps_per_byte,
		.burst_ns = r->bw.burst_ns,
	};
	__u32 zero = 0;
	int fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "ns_police"));

	if (fd < 0)
		return -ENOENT;
	if (bpf_map_update_elem(fd, &zero, &p, BPF_F_LOCK)) {
		log_err("max-bandwidth: cannot set the programs' cap: %s", strerror(errno));
		return -errno;
	}
	if (r->cfg.max_bw_mbit)
		log_info("max-bandwidth: %u Mbit/s, over it packets are dropped",
			 r->cfg.max_bw_mbit);
	return 0;
}

static int relay_bpf_open(struct relay *r)
{
	struct relay_bpf *b;
	struct bpf_object *obj;
	int err;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	r->bpf = b;
	b->ncpus = libbpf_num_possible_cpus();
	err = prepare_pin_dir(r->cfg.pin_dir);
	if (err)
		return err;
	r->kmod = !r->cfg.no_kmod && kmod_present();
	log_info("handshake: %s", r->kmod ? "kernel shim " NS_KMOD_NAME :
		 r->cfg.no_kmod ? "this daemon (--handshake daemon)" :
				  "this daemon (no " NS_KMOD_NAME " module)");

	if (r->cfg.mode == RELAY_XDP) {
		b->xdp = xdp_relay__open();
		if (!b->xdp)
			return -errno;
		set_rodata(&r->cfg, (__u32 *)&b->xdp->rodata->relay_addr4,
			   (__u32 *)b->xdp->rodata->relay_addr6);
		b->xdp->rodata->use_kmod = r->kmod;
		err = pin_maps(b->xdp->obj, r->cfg.pin_dir);
		if (!err)
			err = adopt_dev_maps(r, b->xdp->obj);
		if (err == -ESTALE)
			return err;
		if (!err)
			err = xdp_relay__load(b->xdp);
		if (err)
			return load_obj_error("XDP", err, r->cfg.pin_dir);
	}
	/* TC runs in both modes: in XDP mode it takes over spliced packets XDP
	 * left to the stack because the next hop had no neighbour entry yet. */
	b->tc = tc_relay__open();
	if (!b->tc)
		return -errno;
	set_rodata(&r->cfg, (__u32 *)&b->tc->rodata->relay_addr4,
		   (__u32 *)b->tc->rodata->relay_addr6);
	b->tc->rodata->tc_behind_xdp = r->cfg.mode == RELAY_XDP;
	b->tc->rodata->use_kmod = r->kmod;
	err = pin_maps(b->tc->obj, r->cfg.pin_dir);
	if (!err && r->cfg.mode != RELAY_XDP)
		err = adopt_dev_maps(r, b->tc->obj);
	if (err == -ESTALE)
		return err;
	if (!err)
		err = tc_relay__load(b->tc);
	if (err)
		return load_obj_error("TC", err, r->cfg.pin_dir);

	obj = b->tc->obj;
	b->table = bpf_map__fd(bpf_object__find_map_by_name(obj, "ns_table"));
	b->counters = bpf_map__fd(bpf_object__find_map_by_name(obj, "ns_counters"));
	b->stats = bpf_map__fd(bpf_object__find_map_by_name(obj, "ns_stats"));
	b->ports = bpf_map__fd(bpf_object__find_map_by_name(obj, "ns_ports"));
	b->splices = bpf_map__fd(bpf_object__find_map_by_name(obj, "ns_splices"));
	b->track = bpf_map__fd(bpf_object__find_map_by_name(obj, "ns_track"));
	b->rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "ns_punts")),
				 on_punt, r, NULL);
	if (!b->rb)
		return -errno;
	err = set_police(r, obj);
	if (err)
		return err;

	if (r->cfg.mode == RELAY_XDP) {
		err = attach_xdp(r, b);
		if (err)
			return err;
	}
	return attach_tc(r, b);
}

static void relay_bpf_close(struct relay *r)
{
	struct relay_bpf *b = r->bpf;

	if (!b)
		return;
	ring_buffer__free(b->rb);
	/* Closing our link fd leaves the pinned link, and so the program, in place. */
	bpf_link__destroy(b->xdp_link);
	xdp_relay__destroy(b->xdp);
	tc_relay__destroy(b->tc);
	free(b);
	r->bpf = NULL;
}

static void port_key(const struct relay_splice *sp, int side, struct ns_port_key *k)
{
	memset(k, 0, sizeof(*k));
	k->proto = sp->s.proto;
	k->family = sp->s.family;
	k->port = sp->s.port[side];
}

/*
 * Take the splice's expectation off a relay port, if it is still this
 * splice's. seal: other splices still use the port, so leave a sealed
 * expectation (of no splice) that keeps dropping strangers there.
 */
static void relay_bpf_unexpect(struct relay *r, const struct relay_splice *sp, int side,
			       bool seal)
{
	struct ns_port_key k;
	struct ns_port_val v;

	if (!sp->s.port[side])
		return;
	port_key(sp, side, &k);
	if (bpf_map_lookup_elem(r->bpf->ports, &k, &v) || v.splice_id != sp->s.id)
		return;
	if (!seal) {
		bpf_map_delete_elem(r->bpf->ports, &k);
		return;
	}
	memset(&v, 0, sizeof(v));
	bpf_map_update_elem(r->bpf->ports, &k, &v, BPF_EXIST);
}

/*
 * Install the expectation for one relay port. Sealed (once established): no
 * source is allowed any more, so a stranger's packets to the port are
 * dropped (counted as "source"/"stranger") instead of reaching the kernel,
 * which would answer with an RST; the real peers hit the splice table first.
 */
static int relay_bpf_expect(struct relay *r, const struct relay_splice *sp, int side,
			    bool sealed)
{
	struct ns_port_key k;
	struct ns_port_val v = {};

	if (sp->s.pub && side == 1)
		return 0;	/* the public port's own expectation stays */
	port_key(sp, side, &k);
	v.splice_id = sp->s.id;
	v.side = side;
	v.loose = !relay_port_own(r, ntohs(sp->s.port[side]));
	if (sealed && v.loose) {
		/* Any port (a pure splice's side B): the host may use it. */
		relay_bpf_unexpect(r, sp, side, false);
		return 0;
	}
	if (!sealed) {
		v.allow_any = sp->s.allow_any[side];
		memcpy(v.allow, sp->s.allow[side], sizeof(v.allow));
		v.proving = sp->prove_side == side;
	}
	if (bpf_map_update_elem(r->bpf->ports, &k, &v, BPF_ANY))
		return -errno;
	return 0;
}

static int relay_bpf_save(struct relay *r, const struct relay_splice *sp)
{
	if (bpf_map_update_elem(r->bpf->splices, &sp->s.id, &sp->s, BPF_ANY))
		return -errno;
	return 0;
}

/*
 * The fast path's window check (bpf/lib/splice.h ns_window) starts from the
 * two SYNs the daemon paired: side d has sent up to its ISN + 1,
 * acknowledges up to its partner's ISN + 1 and offered the window of its
 * SYN (never scaled, RFC 7323 2.2); later windows are scaled by the shift
 * its SYN asked for, when both SYNs asked (our SYN-ACKs carry the partner's
 * ISN and options: the relay never shifts sequence numbers, passive or
 * pure). Without both SYNs (UDP, the module's handshake) the slot says "not
 * tracked": it may hold a former splice's marks.
 */
static void track_install(struct relay_bpf *b, const struct relay_splice *sp)
{
	__u32 slot = NS_SPLICE_SLOT(sp->s.id);
	const struct ns_syn *syn = sp->s.syn;
	struct ns_track t = {};
	bool scaled;
	int d;

	if (sp->s.proto == IPPROTO_TCP && (sp->s.seen & 3) == 3) {
		scaled = syn[0].opts & syn[1].opts & NS_SYN_WSCALE;
		t.splice_id = sp->s.id;
		for (d = 0; d < 2; d++) {
			t.wscale[d] = scaled ? syn[d].wscale : 0;
			t.snd_max[d] = syn[d].isn + 1;
			t.ack_max[d] = syn[!d].isn + 1;
			t.max_win[d] = syn[d].window;
			t.edge[d] = t.ack_max[d] + t.max_win[d];
		}
	}
	if (b->track >= 0 && bpf_map_update_elem(b->track, &slot, &t, BPF_ANY))
		log_warn("splice %u: window tracking: %s", sp->s.id, strerror(errno));
}

static int relay_bpf_install(struct relay *r, const struct relay_splice *sp)
{
	struct relay_bpf *b = r->bpf;
	struct ns_key key[2];
	struct ns_rewrite val[2];
	__u64 now = ns_now_ns();
	int dir, err;

	for (dir = 0; dir < 2; dir++) {
		ns_entry_build(&sp->s, dir, &key[dir], &val[dir]);
		val[dir].last_seen_ns = now;
		if (bpf_map_update_elem(b->table, &key[dir], &val[dir], BPF_NOEXIST)) {
			err = -errno;
			if (dir == 1)
				bpf_map_delete_elem(b->table, &key[0]);
			return err;
		}
	}
	track_install(b, sp);
	return 0;
}

/* The splice's table entries (those that are still its own) and its record. */
static void relay_bpf_remove(struct relay *r, struct relay_splice *sp)
{
	struct ns_key key;
	struct ns_rewrite val;
	int dir;

	if (sp->s.state >= NS_ST_ESTABLISHED) {
		for (dir = 0; dir < 2; dir++) {
			ns_entry_build(&sp->s, dir, &key, &val);
			if (!bpf_map_lookup_elem(r->bpf->table, &key, &val) &&
			    val.splice_id == sp->s.id)
				bpf_map_delete_elem(r->bpf->table, &key);
		}
	}
	if (r->bpf->track >= 0) {	/* (no stale marks for a later splice of this id) */
		__u32 slot = NS_SPLICE_SLOT(sp->s.id);
		struct ns_track t = {};

		if (!bpf_map_lookup_elem(r->bpf->track, &slot, &t) && t.splice_id == sp->s.id) {
			memset(&t, 0, sizeof(t));
			bpf_map_update_elem(r->bpf->track, &slot, &t, BPF_ANY);
		}
	}
	bpf_map_delete_elem(r->bpf->splices, &sp->s.id);
}

static __u32 relay_bpf_key_owner(struct relay *r, const struct relay_splice *sp, int dir)
{
	struct ns_key key;
	struct ns_rewrite val;

	ns_entry_build(&sp->s, dir, &key, &val);
	if (bpf_map_lookup_elem(r->bpf->table, &key, &val))
		return 0;
	return val.splice_id;
}

static int relay_bpf_restore(struct relay *r)
{
	struct ns_splice s;
	__u32 key, next, *prev = NULL;
	int n = 0;

	while (!bpf_map_get_next_key(r->bpf->splices, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(r->bpf->splices, &key, &s))
			continue;
		if (!r->ev.adopt(r, &s))
			return -ENOMEM;
		n++;
	}
	return n;
}

/* Zero the splice's counters slot, which an earlier splice may have used. */
static int relay_bpf_counters_reset(struct relay *r, const struct relay_splice *sp)
{
	struct relay_bpf *b = r->bpf;
	__u32 slot = NS_SPLICE_SLOT(sp->s.id);
	struct ns_counters *zero;
	int err = 0;

	zero = calloc(b->ncpus, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(b->counters, &slot, zero, BPF_ANY))
		err = -errno;
	free(zero);
	return err;
}

static int relay_bpf_counters(struct relay *r, const struct relay_splice *sp,
			      __u64 packets[2], __u64 bytes[2])
{
	struct relay_bpf *b = r->bpf;
	__u32 slot = NS_SPLICE_SLOT(sp->s.id);
	struct ns_counters *cnt;
	int dir, c, err = 0;

	packets[0] = packets[1] = bytes[0] = bytes[1] = 0;
	cnt = calloc(b->ncpus, sizeof(*cnt));
	if (!cnt)
		return -ENOMEM;
	if (bpf_map_lookup_elem(b->counters, &slot, cnt)) {
		err = -errno;
		goto out;
	}
	for (c = 0; c < b->ncpus; c++) {
		for (dir = 0; dir < 2; dir++) {
			packets[dir] += cnt[c].packets[dir];
			bytes[dir] += cnt[c].bytes[dir];
		}
	}
out:
	free(cnt);
	return err;
}

static int relay_bpf_entries(struct relay *r, const struct relay_splice *sp,
			     struct relay_entries *e)
{
	struct ns_key key;
	struct ns_rewrite val;
	int dir;

	memset(e, 0, sizeof(*e));
	for (dir = 0; dir < 2; dir++) {
		ns_entry_build(&sp->s, dir, &key, &val);
		if (bpf_map_lookup_elem(r->bpf->table, &key, &val))
			return -errno;
		/* A newer splice took this entry over (its peer reused the
		 * addresses and ports): this splice's connection is over. */
		e->flags[dir] = val.splice_id == sp->s.id ? val.flags : NS_F_RST;
		if (val.last_seen_ns > e->last_seen_ns)
			e->last_seen_ns = val.last_seen_ns;
	}
	return 0;
}

static int relay_bpf_stats(struct relay *r, __u64 stats[NS_STAT_MAX])
{
	struct relay_bpf *b = r->bpf;
	__u64 *v;
	__u32 i;
	int c;

	v = calloc(b->ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < NS_STAT_MAX; i++) {
		stats[i] = 0;
		if (bpf_map_lookup_elem(b->stats, &i, v))
			continue;
		for (c = 0; c < b->ncpus; c++)
			stats[i] += v[c];
	}
	free(v);
	return 0;
}

/* `natsplice dev detach DEV`: take the programs off DEV; once no device is
 * left, remove the pinned maps too. */
int relay_bpf_detach_dev(const char *pin_dir, const char *dev)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_HANDLE, .priority = TC_PRIO);
	struct bpf_link *link;
	char path[512];
	int ifindex, found = 0;
	struct dirent *de;
	DIR *d;

	ifindex = if_nametoindex(dev);
	if (!ifindex)
		return -ENODEV;
	link_pin_path(path, sizeof(path), pin_dir, dev);
	link = bpf_link__open(path);
	if (link) {
		bpf_link__detach(link);
		bpf_link__destroy(link);
		unlink(path);
		found = 1;
	}
	if (dev_prog_id(ifindex, true) && !bpf_xdp_detach(ifindex, 0, NULL))
		found = 1;
	hook.ifindex = ifindex;
	if (!bpf_tc_query(&hook, &opts)) {
		opts.prog_fd = opts.prog_id = opts.flags = 0;
		if (!bpf_tc_detach(&hook, &opts))
			found = 1;
	}
	prog_pin_path(path, sizeof(path), pin_dir, "xdp", dev);
	unlink(path);
	prog_pin_path(path, sizeof(path), pin_dir, "tc", dev);
	unlink(path);
	d = opendir(pin_dir);
	if (d) {
		int devs = 0;

		/* Other devices still running the programs keep the maps. */
		while ((de = readdir(d)))
			devs += !strncmp(de->d_name, "xdp_link_", 9) ||
				!strncmp(de->d_name, "prog_", 5);
		closedir(d);
		if (!devs) {
			d = opendir(pin_dir);
			while (d && (de = readdir(d))) {
				if (de->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
				unlink(path);
			}
			if (d)
				closedir(d);
			rmdir(pin_dir);
		}
	}
	return found ? 0 : -ENOENT;
}

/* The splice as the kernel handshake left it in the splice store. */
static int relay_bpf_refresh(struct relay *r, struct ns_splice *s)
{
	if (bpf_map_lookup_elem(r->bpf->splices, &s->id, s))
		return -errno;
	return 0;
}

/* ---- the dataplane (struct relay_dataplane) ---- */

/* bpf_fib_lookup answers FWD_DISABLED unless forwarding is on for the
 * ingress device: a relay forwards, so turn it on for DEV. */
static void enable_forwarding(struct relay *r)
{
	static const char *const fmt[] = {
		"/proc/sys/net/ipv4/conf/%s/forwarding",
		"/proc/sys/net/ipv6/conf/%s/forwarding",
	};
	char path[128];
	int i;

	for (i = 0; i < 2; i++) {
		FILE *f;

		if ((i == 0 && !r->cfg.has4) || (i == 1 && !r->cfg.has6))
			continue;
		snprintf(path, sizeof(path), fmt[i], r->cfg.dev);
		f = fopen(path, "w");
		if (!f || fputs("1", f) < 0)
			log_warn("cannot enable forwarding (%s): spliced packets will be "
				 "dropped as 'fib'", path);
		if (f)
			fclose(f);
	}
}

static void on_ring(struct relay *r, struct relay_watch *w, __u32 events)
{
	ring_buffer__consume(r->bpf->rb);
}

/* The public ports of a daemon before this one: the broker opens them again
 * (until then their SYNs go to the kernel, which resets them). */
static void public_forget(struct relay *r)
{
	struct ns_port_key k, next, *prev = NULL;
	struct ns_port_val v;

	while (!bpf_map_get_next_key(r->bpf->ports, prev, &next)) {
		k = next;
		prev = &k;
		if (!bpf_map_lookup_elem(r->bpf->ports, &k, &v) && (v.splice_id & NS_PUBLIC_BIT) &&
		    !bpf_map_delete_elem(r->bpf->ports, &k))
			prev = NULL;	/* (deleted: start over) */
	}
}

static int dp_open(struct relay *r)
{
	int err, n;

	err = relay_send_open(r);
	if (err) {
		log_err("raw socket: %s", strerror(-err));
		return err;
	}
	enable_forwarding(r);
	err = relay_bpf_open(r);
	if (err)
		return err;
	r->ring_w.fd = ring_buffer__epoll_fd(r->bpf->rb);
	r->ring_w.fn = on_ring;
	err = relay_watch_add(r, &r->ring_w, EPOLLIN);
	if (err)
		return err;
	n = relay_bpf_restore(r);
	if (n > 0)
		log_info("took over %d splices from the pinned state", n);
	public_forget(r);
	return n;
}

static void dp_close(struct relay *r)
{
	relay_bpf_close(r);
	if (r->raw4 >= 0)
		close(r->raw4);
	if (r->raw6 >= 0)
		close(r->raw6);
	r->raw4 = r->raw6 = -1;
}

static int dp_splice_open(struct relay *r, struct relay_splice *sp)
{
	int err = relay_bpf_counters_reset(r, sp);

	if (!err)
		err = relay_bpf_expect(r, sp, 0, false);
	/* (a pure splice learns side B's port from A's SYN: port_wait) */
	if (!err && sp->s.port[1])
		err = relay_bpf_expect(r, sp, 1, false);
	return err;
}

static int dp_port_wait(struct relay *r, const struct relay_splice *sp, int side)
{
	return relay_bpf_expect(r, sp, side, false);
}

static int dp_install(struct relay *r, struct relay_splice *sp)
{
	int err = relay_bpf_install(r, sp);

	if (err)
		return err;
	relay_bpf_expect(r, sp, 0, true);
	relay_bpf_expect(r, sp, 1, true);
	return 0;
}

static int dp_answer(struct relay *r, const struct relay_splice *sp, int side)
{
	return sp->s.proto == IPPROTO_TCP ? relay_send_synack(r, sp, side) :
					    relay_send_udp_ok(r, sp, side);
}

/*
 * A public port: its SYNs and (while a client proves itself) its ACKs go to
 * the daemon (bpf/lib/splice.h ns_miss, as for a proving side), under the
 * port's punt id; a client's splice, once established, is found by its
 * 5-tuple first. Its RSTs and strangers' segments are dropped.
 */
static void public_key(const struct relay_public *pub, struct ns_port_key *k)
{
	memset(k, 0, sizeof(*k));
	k->proto = IPPROTO_TCP;
	k->family = pub->family;
	k->port = htons(pub->port);
}

static int dp_public_open(struct relay *r, struct relay_public *pub)
{
	struct ns_port_val v = {
		.splice_id = NS_PUBLIC_BIT | pub->index, .side = 1, .allow_any = 1,
		.proving = 1,
	};
	struct ns_port_key k;

	public_key(pub, &k);
	if (bpf_map_update_elem(r->bpf->ports, &k, &v, BPF_ANY))
		return -errno;
	return 0;
}

static void dp_public_close(struct relay *r, struct relay_public *pub)
{
	struct ns_port_key k;

	public_key(pub, &k);
	bpf_map_delete_elem(r->bpf->ports, &k);
}

const struct relay_dataplane relay_dp_bpf = {
	/* map reads and writes: distributions forbid unprivileged bpf() */
	.keep_caps = NS_CAP(CAP_BPF),
	.needs_root = true,
	.outlives_daemon = true,
	.pure = true,
	.answers_syns = true,
	.open = dp_open,
	.close = dp_close,
	.splice_open = dp_splice_open,
	.splice_close = relay_bpf_remove,
	.port_wait = dp_port_wait,
	.port_release = relay_bpf_unexpect,
	.install = dp_install,
	.answer = dp_answer,
	.reset = relay_send_rst,
	.save = relay_bpf_save,
	.refresh = relay_bpf_refresh,
	.entries = relay_bpf_entries,
	.counters = relay_bpf_counters,
	.key_owner = relay_bpf_key_owner,
	.stats = relay_bpf_stats,
	.public_open = dp_public_open,
	.public_close = dp_public_close,
};
