/*
 * cgpath.c - what a cgroup path says about its owner.
 *
 * Discovery walks the cgroup tree and asks cg_classify about every directory
 * it meets, so this is the one place that knows how each runtime names its
 * cgroups, under both the cgroupfs and the systemd cgroup drivers:
 *
 *   docker       /docker/<id>                 .../docker-<id>.scope
 *   containerd   /<namespace>/<id>            .../cri-containerd-<id>.scope
 *                                             .../nerdctl-<id>.scope
 *   CRI-O        .../pod<uid>/crio-<id>       .../crio-<id>.scope
 *   podman       /libpod_parent/libpod-<id>   .../libpod-<id>.scope
 *   nspawn                                    machine.slice/systemd-nspawn@<name>.service
 *                                             machine.slice/machine-<name>.scope
 *   LXC          /lxc/<name>, /lxc.payload.<name>
 *   Kubernetes   /kubepods[/<qos>]/pod<uid>   kubepods[-<qos>]-pod<uid>.slice
 *
 * Only the last two path components and, for Kubernetes pods, the two above
 * them decide, so a nested runtime (docker in docker, kind) is classified by
 * its innermost cgroup. The helpers (runc, conmon, podman's "container"
 * child, LXC monitors) and every slice, service and mount are not containers.
 *
 * It runs for every directory of every walk: no allocation, no regex, just a
 * backwards split of the path into (pointer, length) components.
 */
#include "collectors/collector.h"

#include <stdio.h>
#include <string.h>

/* A path component: not NUL-terminated. */
struct comp {
	const char *s;
	size_t n;
};

#define MAX_COMPS 5

/* Splits the last (up to) MAX_COMPS components of path, last first; returns
 * how many there are, MAX_COMPS meaning "at least that many". */
static int split_tail(const char *path, struct comp *c)
{
	size_t end = strlen(path);
	int k = 0;
	while (k < MAX_COMPS) {
		while (end > 0 && path[end - 1] == '/')
			end--;
		if (end == 0)
			break;
		size_t start = end;
		while (start > 0 && path[start - 1] != '/')
			start--;
		c[k].s = path + start;
		c[k].n = end - start;
		k++;
		end = start;
	}
	return k;
}

static bool comp_eq(struct comp c, const char *lit)
{
	size_t n = strlen(lit);
	return c.n == n && memcmp(c.s, lit, n) == 0;
}

static bool comp_prefix(struct comp c, const char *lit)
{
	size_t n = strlen(lit);
	return c.n >= n && memcmp(c.s, lit, n) == 0;
}

static bool comp_suffix(struct comp c, const char *lit)
{
	size_t n = strlen(lit);
	return c.n >= n && memcmp(c.s + c.n - n, lit, n) == 0;
}

/* c with prefix and suffix removed when it has both, else an empty comp. */
static struct comp comp_inner(struct comp c, const char *prefix, const char *suffix)
{
	struct comp none = { c.s, 0 };
	size_t p = strlen(prefix), s = strlen(suffix);
	if (c.n < p + s || !comp_prefix(c, prefix) || !comp_suffix(c, suffix))
		return none;
	return (struct comp){ c.s + p, c.n - p - s };
}

static bool is_hex64(struct comp c)
{
	if (c.n != 64)
		return false;
	for (size_t i = 0; i < 64; i++) {
		char ch = c.s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
	}
	return true;
}

static bool is_alnum(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* containerd's identifier rule for namespaces and container ids:
 * alphanumerics separated by single '.', '_' or '-', at most 76 bytes. */
static bool is_ctrd_ident(struct comp c)
{
	if (c.n == 0 || c.n > 76 || !is_alnum(c.s[0]) || !is_alnum(c.s[c.n - 1]))
		return false;
	for (size_t i = 1; i < c.n; i++) {
		char ch = c.s[i];
		if (is_alnum(ch))
			continue;
		if ((ch == '.' || ch == '_' || ch == '-') && is_alnum(c.s[i - 1]))
			continue;
		return false;
	}
	return true;
}

/* systemd unit and slice names look like containerd namespaces; they never are. */
static bool is_unit_name(struct comp c)
{
	static const char *const suffixes[] = { ".slice", ".scope", ".service", ".mount",
						".socket", ".swap" };
	for (size_t i = 0; i < ARRAY_LEN(suffixes); i++)
		if (comp_suffix(c, suffixes[i]))
			return true;
	return false;
}

static bool set_id(struct cg_ident *out, struct comp id)
{
	if (id.n == 0 || id.n >= sizeof(out->id))
		return false;
	memcpy(out->id, id.s, id.n);
	out->id[id.n] = '\0';
	return true;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Sets out->id to a systemd-escaped name with its \xNN escapes undone.
 * Refuses names that would hold '/' or NUL, or do not fit. */
static bool set_id_unescaped(struct cg_ident *out, struct comp name)
{
	size_t o = 0;
	for (size_t i = 0; i < name.n; i++) {
		char ch = name.s[i];
		if (ch == '\\' && i + 3 < name.n && name.s[i + 1] == 'x' &&
		    hexval(name.s[i + 2]) >= 0 && hexval(name.s[i + 3]) >= 0) {
			ch = (char)(hexval(name.s[i + 2]) * 16 + hexval(name.s[i + 3]));
			i += 3;
		}
		if (ch == '\0' || ch == '/' || o + 1 >= sizeof(out->id))
			return false;
		out->id[o++] = ch;
	}
	out->id[o] = '\0';
	return o > 0;
}

/* ---- Kubernetes pods ---------------------------------------------------- */

static bool is_uid_char(char ch, bool systemd)
{
	return hexval(ch) >= 0 || ch == (systemd ? '_' : '-');
}

/* Copies a pod uid, turning the systemd driver's '_' back into '-'. */
static bool copy_uid(char *dst, size_t size, struct comp uid, bool systemd)
{
	if (uid.n == 0 || uid.n >= size)
		return false;
	for (size_t i = 0; i < uid.n; i++) {
		if (!is_uid_char(uid.s[i], systemd))
			return false;
		dst[i] = uid.s[i] == '_' ? '-' : uid.s[i];
	}
	dst[uid.n] = '\0';
	return true;
}

static bool is_qos(struct comp c)
{
	return comp_eq(c, "burstable") || comp_eq(c, "besteffort");
}

static void set_qos(char *dst, size_t size, struct comp qos)
{
	if (qos.n == 0)
		snprintf(dst, size, "guaranteed");
	else
		snprintf(dst, size, "%.*s", (int)qos.n, qos.s);
}

/*
 * Is c[i] a pod's own cgroup? c[] is last-first, k components long. The
 * cgroupfs form needs its parents ("kubepods" or "kubepods/<qos>"); the
 * systemd form names them in the slice. Fills uid and qos when it is.
 */
static bool pod_at(const struct comp *c, int k, int i, char *uid, size_t uid_size,
		   char *qos, size_t qos_size)
{
	struct comp p = c[i];
	struct comp name = comp_inner(p, "", ".slice");
	if (name.n) {
		/* [<root>-]kubepods[-<qos>]-pod<uid>.slice */
		size_t at = name.n;
		while (at >= 4 && memcmp(name.s + at - 4, "-pod", 4) != 0)
			at--;
		if (at < 4)
			return false;
		struct comp head = { name.s, at - 4 };
		struct comp tail = { name.s + at, name.n - at };
		struct comp q = { NULL, 0 };
		static const char *const classes[] = { "burstable", "besteffort" };
		for (size_t j = 0; j < ARRAY_LEN(classes); j++) {
			size_t len = strlen(classes[j]);
			if (comp_suffix(head, classes[j]) && head.n > len &&
			    head.s[head.n - len - 1] == '-') {
				q = (struct comp){ head.s + head.n - len, len };
				head.n -= len + 1;
				break;
			}
		}
		if (!comp_suffix(head, "kubepods") ||
		    (head.n > 8 && head.s[head.n - 9] != '-'))
			return false;
		if (!copy_uid(uid, uid_size, tail, true))
			return false;
		set_qos(qos, qos_size, q);
		return true;
	}
	if (!comp_prefix(p, "pod") || i + 1 >= k)
		return false;
	struct comp q = { NULL, 0 };
	if (comp_eq(c[i + 1], "kubepods")) {
		/* guaranteed */
	} else if (is_qos(c[i + 1]) && i + 2 < k && comp_eq(c[i + 2], "kubepods")) {
		q = c[i + 1];
	} else {
		return false;
	}
	if (!copy_uid(uid, uid_size, (struct comp){ p.s + 3, p.n - 3 }, false))
		return false;
	set_qos(qos, qos_size, q);
	return true;
}

/* ---- containers --------------------------------------------------------- */

/* Matches "<prefix><64 hex><suffix>" and sets the id. */
static bool hex_unit(struct cg_ident *out, struct comp c, const char *prefix, const char *suffix)
{
	struct comp id = comp_inner(c, prefix, suffix);
	return is_hex64(id) && set_id(out, id);
}

/*
 * The runtime a container cgroup named leaf (child of parent) belongs to,
 * RUNTIME_UNKNOWN when it is none. depth is the number of components of the
 * whole path (MAX_COMPS meaning at least that many). Sets out->id.
 */
static enum coll_runtime leaf_runtime(struct cg_ident *out, struct comp leaf,
				      struct comp parent, int depth)
{
	struct comp name;

	if (hex_unit(out, leaf, "docker-", ".scope"))
		return RUNTIME_DOCKER;
	if (comp_eq(parent, "docker") && is_hex64(leaf) && set_id(out, leaf))
		return RUNTIME_DOCKER;
	if (hex_unit(out, leaf, "cri-containerd-", ".scope") ||
	    hex_unit(out, leaf, "nerdctl-", ".scope"))
		return RUNTIME_CONTAINERD;
	/* crio-conmon-<id>.scope holds CRI-O's monitor, not the container */
	if (hex_unit(out, leaf, "crio-", ".scope") || hex_unit(out, leaf, "crio-", ""))
		return RUNTIME_CRIO;
	/* likewise libpod-conmon-<id>.scope; and podman 4+ puts the processes in
	 * libpod-<id>.scope/container, which stays the scope's business */
	if (hex_unit(out, leaf, "libpod-", ".scope") || hex_unit(out, leaf, "libpod-", ""))
		return RUNTIME_PODMAN;

	if ((name = comp_inner(leaf, "systemd-nspawn@", ".service")).n &&
	    set_id_unescaped(out, name))
		return RUNTIME_NSPAWN;
	if (comp_eq(parent, "machine.slice") &&
	    (name = comp_inner(leaf, "machine-", ".scope")).n && set_id_unescaped(out, name))
		return RUNTIME_NSPAWN;

	/* LXC up to 3: /lxc/<name>; LXC 4+: /lxc.payload.<name> (and
	 * /lxc.monitor.<name> for its monitor, which is not the container) */
	if ((comp_eq(parent, "lxc") || comp_eq(parent, "lxc.payload")) && set_id(out, leaf))
		return RUNTIME_LXC;
	if ((name = comp_inner(leaf, "lxc.payload.", "")).n && set_id(out, name))
		return RUNTIME_LXC;

	/* ctr and nerdctl with cgroupfs: /<namespace>/<id>. A 64-hex id below
	 * any namespace-like parent; ctr's free-form ids only right below
	 * /default, where ctr puts them unless told otherwise. */
	if (parent.n && is_ctrd_ident(parent) && !is_unit_name(parent)) {
		if (is_hex64(leaf) && set_id(out, leaf))
			return RUNTIME_CONTAINERD;
		if (depth == 2 && comp_eq(parent, "default") && is_ctrd_ident(leaf) &&
		    set_id(out, leaf))
			return RUNTIME_CONTAINERD;
	}
	return RUNTIME_UNKNOWN;
}

/* The container cgroups kubelet's runtimes make right below a pod. */
static enum coll_runtime pod_child_runtime(struct cg_ident *out, struct comp leaf)
{
	if (hex_unit(out, leaf, "cri-containerd-", ".scope"))
		return RUNTIME_CONTAINERD;
	if (hex_unit(out, leaf, "crio-", ".scope") || hex_unit(out, leaf, "crio-", ""))
		return RUNTIME_CRIO;
	if (hex_unit(out, leaf, "docker-", ".scope"))
		return RUNTIME_DOCKER; /* cri-dockerd with the systemd driver */
	/* cgroupfs: containerd names it by the bare id; CRI-O would say crio- */
	if (is_hex64(leaf) && set_id(out, leaf))
		return RUNTIME_CONTAINERD;
	return RUNTIME_UNKNOWN;
}

int cg_classify(const char *path, struct cg_ident *out)
{
	memset(out, 0, sizeof(*out));
	if (!path)
		return 0;
	struct comp c[MAX_COMPS];
	int k = split_tail(path, c);
	if (k == 0)
		return 0;

	/* The pod itself. */
	if (pod_at(c, k, 0, out->pod_uid, sizeof(out->pod_uid), out->qos, sizeof(out->qos))) {
		memcpy(out->id, out->pod_uid, sizeof(out->pod_uid));
		out->runtime = RUNTIME_KUBEPOD;
		return 1;
	}

	/* A container of a pod. */
	if (k >= 2 &&
	    pod_at(c, k, 1, out->pod_uid, sizeof(out->pod_uid), out->qos, sizeof(out->qos))) {
		enum coll_runtime rt = pod_child_runtime(out, c[0]);
		if (rt == RUNTIME_UNKNOWN) {
			memset(out, 0, sizeof(*out));
			return 0;
		}
		out->runtime = rt;
		return 1;
	}

	/* A failed pod match may have left part of a uid behind. */
	memset(out->pod_uid, 0, sizeof(out->pod_uid));
	memset(out->qos, 0, sizeof(out->qos));
	struct comp none = { "", 0 };
	enum coll_runtime rt = leaf_runtime(out, c[0], k >= 2 ? c[1] : none, k);
	if (rt == RUNTIME_UNKNOWN) {
		out->id[0] = '\0';
		return 0;
	}
	out->runtime = rt;
	return 1;
}
