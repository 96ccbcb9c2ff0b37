/*
 * oci.c - container metadata from the runtimes' own files.
 *
 * Docker answers over its API (docker.c); everything else is read from the
 * files the runtimes leave on the host, through the host-root prefix:
 *
 *   state.json   runc's record of a live container: its creation time, init
 *                pid, bundle directory and cgroups. Plain runc keeps it in
 *                /run/runc/<id>/ (so do CRI-O and podman when they use runc),
 *                Docker's containerd in /run/docker/runtime-runc/moby/<id>/,
 *                containerd in /run/containerd/runc/<namespace>/<id>/.
 *   config.json  the OCI bundle's spec, whose annotations carry what the
 *                Kubernetes runtimes know: pod, namespace, container, image.
 *                Found through the state's "bundle=" label, or at the
 *                runtime's fixed place (containerd's task directory, CRI-O's
 *                and podman's userdata directory).
 *   containers.json  podman's (containers/storage) list of containers, with
 *                their names and images.
 *
 * Nothing here is trusted: files are capped at OCI_FILE_MAX, ids and
 * namespaces that could climb out of a directory are refused, and a missing
 * or malformed file only means that source says nothing.
 *
 * Both entry points run on the tick thread (at discovery), keep no state and
 * may be called from any thread.
 */
#include "collectors/collector.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OCI_FILE_MAX (1u << 20)   /* larger files are skipped with -EFBIG */
#define OCI_MAX_LABELS 256         /* annotations kept per container */
#define OCI_MAX_LABEL_BYTES 4096   /* longer annotations (CRI-O's JSON blobs) are dropped */

/* ---- small helpers ------------------------------------------------------ */

/* A single path component we may join into a path: no '/', not "." or "..". */
static bool safe_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 255 || strchr(s, '/'))
		return false;
	return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/*
 * Reads and parses a JSON file at a host path (host root applied here).
 * Returns 0 with doc filled (caller frees with json_doc_free), -EFBIG past
 * OCI_FILE_MAX, -EINVAL for malformed JSON, or -errno.
 */
static int load_json(const char *host_path, struct json_doc *doc)
{
	char path[PATH_MAX];
	struct stat st;
	int rc = hostroot_path(path, sizeof(path), host_path);
	if (rc < 0)
		return rc;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size > (off_t)OCI_FILE_MAX)
		return -EFBIG;
	/* Sized by stat, with slack; a file that outgrew the buffer meanwhile
	 * is read again with the whole cap. */
	size_t want = (size_t)st.st_size + 4096;
	for (;;) {
		if (want > OCI_FILE_MAX + 1)
			want = OCI_FILE_MAX + 1;
		char *text = malloc(want + 1);
		if (!text)
			return -ENOMEM;
		ssize_t n = read_file(path, text, want + 1);
		if (n < 0) {
			free(text);
			return (int)n;
		}
		if ((size_t)n > OCI_FILE_MAX) {
			free(text);
			return -EFBIG;
		}
		if ((size_t)n == want) {
			free(text);
			want = OCI_FILE_MAX + 1;
			continue;
		}
		size_t err_off;
		rc = json_parse(doc, text, (size_t)n, &err_off);
		free(text);
		return rc;
	}
}

static bool two_digits(const char *s, int *out)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return false;
	*out = (s[0] - '0') * 10 + (s[1] - '0');
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * Parses an RFC 3339 time as Go writes it ("2024-05-01T12:00:00.123456789Z",
 * "...+02:00") into unix seconds. 0 when s is NULL, malformed, or before
 * 1970 (Go's zero time "0001-01-01T00:00:00Z" means "unknown").
 */
static double parse_rfc3339(const char *s)
{
	int yh, yl, mo, d, h, mi, sec;
	if (!s || strlen(s) < 20)
		return 0;
	if (!two_digits(s, &yh) || !two_digits(s + 2, &yl) || s[4] != '-' ||
	    !two_digits(s + 5, &mo) || s[7] != '-' || !two_digits(s + 8, &d) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !two_digits(s + 11, &h) ||
	    s[13] != ':' || !two_digits(s + 14, &mi) || s[16] != ':' || !two_digits(s + 17, &sec))
		return 0;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return 0;
	const char *p = s + 19;
	int64_t nsec = 0;
	if (*p == '.') {
		int nd = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, nd++)
			if (nd < 9)
				nsec = nsec * 10 + (*p - '0');
		if (nd == 0)
			return 0;
		for (; nd < 9; nd++)
			nsec *= 10;
	}
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (!two_digits(p + 1, &oh) || p[3] != ':' || !two_digits(p + 4, &om))
			return 0;
		off = (int64_t)(oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return 0;
	}
	if (*p)
		return 0;
	int64_t t = days_from_civil(yh * 100 + yl, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	if (t <= 0)
		return 0;
	return (double)t + (double)nsec / 1e9;
}

/* Sets *field to a copy of val unless it is already known or val is empty.
 * Returns 0 or -ENOMEM. */
static int set_field(char **field, const char *val)
{
	if (*field || !val || !*val)
		return 0;
	*field = strdup(val);
	return *field ? 0 : -ENOMEM;
}

/* ---- state.json --------------------------------------------------------- */

/* Loads the first <dir>/<namespace>/<id>/<file> that parses, for every
 * namespace directory of dir; its namespace goes into ns when ns_size is
 * not 0. 0 or -ENOENT. */
static int load_ns_file(const char *dir, const char *id, const char *file,
			struct json_doc *doc, char *ns, size_t ns_size)
{
	char path[PATH_MAX];
	if (hostroot_path(path, sizeof(path), dir) < 0)
		return -ENOENT;
	DIR *d = opendir(path);
	if (!d)
		return -ENOENT;
	int rc = -ENOENT;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!safe_name(de->d_name))
			continue;
		char rel[PATH_MAX];
		if (snprintf(rel, sizeof(rel), "%s/%s/%s/%s", dir, de->d_name, id, file) >=
		    (int)sizeof(rel))
			continue;
		if (load_json(rel, doc) == 0) {
			if (ns_size)
				snprintf(ns, ns_size, "%s", de->d_name);
			rc = 0;
			break;
		}
	}
	closedir(d);
	return rc;
}

/* Finds the runc state of id where the runtime rt keeps it. ns is set to the
 * containerd namespace when the state came from containerd's tree. */
static int find_state(const char *id, enum coll_runtime rt, struct json_doc *doc,
		      char *ns, size_t ns_size)
{
	char rel[PATH_MAX];
	ns[0] = '\0';
	bool any = rt == RUNTIME_UNKNOWN;
	if (any || rt == RUNTIME_RUNC || rt == RUNTIME_CRIO || rt == RUNTIME_PODMAN) {
		snprintf(rel, sizeof(rel), "/run/runc/%s/state.json", id);
		if (load_json(rel, doc) == 0)
			return 0;
	}
	if (any || rt == RUNTIME_DOCKER) {
		snprintf(rel, sizeof(rel), "/run/docker/runtime-runc/moby/%s/state.json", id);
		if (load_json(rel, doc) == 0)
			return 0;
		/* Docker on the system's containerd */
		snprintf(rel, sizeof(rel), "/run/containerd/runc/moby/%s/state.json", id);
		if (load_json(rel, doc) == 0) {
			snprintf(ns, ns_size, "moby");
			return 0;
		}
	}
	if (any || rt == RUNTIME_CONTAINERD)
		return load_ns_file("/run/containerd/runc", id, "state.json", doc, ns, ns_size);
	return -ENOENT;
}

/*
 * "running", "paused" or "stopped" as runc would say: the init process
 * must still be the one runc started (same start time) and not a zombie;
 * frozen cgroups are paused. NULL when the host's /proc is not visible.
 */
static const char *state_status(const struct json *st)
{
	const struct json *pid = json_get(st, "init_process_pid");
	const struct json *start = json_get(st, "init_process_start");
	if (!pid || pid->type != JSON_NUMBER || pid->number < 1 || pid->number > 1 << 22)
		return NULL;
	char rel[64], path[PATH_MAX], text[1024];
	snprintf(rel, sizeof(rel), "/proc/%d/stat", (int)pid->number);
	if (hostroot_path(path, sizeof(path), rel) < 0)
		return NULL;
	ssize_t n = read_file(path, text, sizeof(text));
	if (n < 0) {
		struct stat sb;
		if (n != -ENOENT || hostroot_path(path, sizeof(path), "/proc/1") < 0 ||
		    stat(path, &sb) < 0)
			return NULL;
		return "stopped";
	}
	/* Fields after the parenthesised command: state is field 3, starttime 22. */
	const char *p = strrchr(text, ')');
	if (!p || p[1] != ' ')
		return NULL;
	p += 2;
	if (*p == 'Z' || *p == 'X' || *p == 'x')
		return "stopped";
	if (start && start->type == JSON_NUMBER && start->number >= 0 && start->number < 1e18) {
		for (int field = 3; field < 22 && p; field++) {
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		if (!p || strtoull(p, NULL, 10) != (unsigned long long)start->number)
			return "stopped"; /* the pid was reused */
	}

	/* Frozen? v1 freezer when mounted, else the v2 cgroup.freeze. */
	const struct json *cp = json_get(st, "cgroup_paths");
	const char *fz = json_get_str(cp, "freezer");
	const char *file = "/freezer.state", *frozen = "FROZEN";
	if (!fz) {
		fz = json_get_str(cp, "");
		file = "/cgroup.freeze";
		frozen = "1";
	}
	char frel[PATH_MAX];
	if (fz && fz[0] == '/' && snprintf(frel, sizeof(frel), "%s%s", fz, file) < (int)sizeof(frel) &&
	    hostroot_path(path, sizeof(path), frel) == 0 && read_file(path, text, sizeof(text)) > 0 &&
	    strncmp(text, frozen, strlen(frozen)) == 0)
		return "paused";
	return "running";
}

/* Takes the creation time, status and bundle directory from a state. */
static int apply_state(const struct json *st, struct coll_meta *m, char *bundle, size_t bsize)
{
	double created = parse_rfc3339(json_get_str(st, "created"));
	if (created > 0 && m->started_at <= 0)
		m->started_at = created;
	const struct json *labels = json_path(st, "config.labels");
	if (labels && labels->type == JSON_ARRAY)
		for (const struct json *l = labels->child; l; l = l->next)
			if (l->type == JSON_STRING && strncmp(l->string, "bundle=/", 8) == 0)
				snprintf(bundle, bsize, "%s", l->string + 7);
	return set_field(&m->state, state_status(st));
}

/* ---- config.json -------------------------------------------------------- */

static const char *ann(const struct json *a, const char *key)
{
	const char *v = json_get_str(a, key);
	return v && *v ? v : NULL;
}

/* CRI-O's io.kubernetes.cri-o.ContainerName is kubelet's
 * "k8s_<container>_<pod>_<namespace>_<uid>_<attempt>"; the part we want is
 * the container. Writes it into out, or returns NULL. */
static const char *crio_container_name(const char *full, char *out, size_t size)
{
	if (!full || strncmp(full, "k8s_", 4) != 0)
		return full;
	const char *s = full + 4, *e = strchr(s, '_');
	size_t n = e ? (size_t)(e - s) : strlen(s);
	if (n == 0 || n >= size)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

/*
 * What the annotations of an OCI spec say: the Kubernetes names (containerd
 * CRI, CRI-O and kubelet's generic keys), image, nerdctl's name, compose
 * project, restart count; and every annotation as a label.
 */
static int apply_config(const struct json *cfg, struct coll_meta *m)
{
	const struct json *a = json_get(cfg, "annotations");
	if (!a || a->type != JSON_OBJECT)
		return 0;

	const char *ctype = ann(a, "io.kubernetes.cri.container-type");
	const char *crio_type = ann(a, "io.kubernetes.cri-o.ContainerType");
	bool sandbox = (ctype && strcmp(ctype, "sandbox") == 0) ||
		       (crio_type && strcmp(crio_type, "sandbox") == 0);
	const char *pod = ann(a, "io.kubernetes.cri.sandbox-name");
	if (!pod)
		pod = ann(a, "io.kubernetes.pod.name");
	const char *ns = ann(a, "io.kubernetes.cri.sandbox-namespace");
	if (!ns)
		ns = ann(a, "io.kubernetes.pod.namespace");
	char buf[256];
	const char *container = sandbox ? "POD" : ann(a, "io.kubernetes.cri.container-name");
	if (!container)
		container = ann(a, "io.kubernetes.container.name");
	if (!container)
		container = crio_container_name(ann(a, "io.kubernetes.cri-o.ContainerName"), buf,
						sizeof(buf));
	const char *image = ann(a, "io.kubernetes.cri.image-name");
	if (!image)
		image = ann(a, "io.kubernetes.cri-o.ImageName");
	const char *name = container ? container : ann(a, "nerdctl/name");

	int rc = set_field(&m->pod, pod) | set_field(&m->namespace, ns) |
		 set_field(&m->container, container) | set_field(&m->name, name) |
		 set_field(&m->image, image) |
		 set_field(&m->compose_project, ann(a, "com.docker.compose.project"));

	const char *restarts = ann(a, "io.kubernetes.container.restartCount");
	if (restarts && m->restart_count <= 0) {
		char *end;
		long long v = strtoll(restarts, &end, 10);
		if (*end == '\0' && v >= 0)
			m->restart_count = v;
	}
	if (m->started_at <= 0)
		m->started_at = parse_rfc3339(ann(a, "io.kubernetes.cri-o.Created"));

	for (const struct json *e = a->child; e && !rc; e = e->next) {
		if (m->nlabels >= OCI_MAX_LABELS)
			break;
		if (e->type != JSON_STRING || !e->key[0] ||
		    strlen(e->key) + strlen(e->string) > OCI_MAX_LABEL_BYTES ||
		    coll_meta_label(m, e->key))
			continue;
		rc = coll_meta_add_label(m, e->key, e->string);
	}
	return rc ? -ENOMEM : 0;
}

/* Finds the OCI spec of id: the bundle named by its state, else where the
 * runtime keeps its bundles. */
static int find_config(const char *id, enum coll_runtime rt, const char *bundle,
		       const char *ns, struct json_doc *doc)
{
	char rel[PATH_MAX];
	bool any = rt == RUNTIME_UNKNOWN;
	if (bundle[0] && snprintf(rel, sizeof(rel), "%s/config.json", bundle) < (int)sizeof(rel) &&
	    load_json(rel, doc) == 0)
		return 0;
	if (any || rt == RUNTIME_CONTAINERD) {
		if (ns[0]) {
			snprintf(rel, sizeof(rel), "/run/containerd/io.containerd.runtime.v2.task/%s/%s/config.json",
				 ns, id);
			if (load_json(rel, doc) == 0)
				return 0;
		} else if (load_ns_file("/run/containerd/io.containerd.runtime.v2.task", id,
					"config.json", doc, NULL, 0) == 0) {
			return 0;
		}
	}
	if (any || rt == RUNTIME_DOCKER) {
		static const char *const dirs[] = {
			"/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby",
			"/run/containerd/io.containerd.runtime.v2.task/moby",
		};
		for (size_t i = 0; i < ARRAY_LEN(dirs); i++) {
			snprintf(rel, sizeof(rel), "%s/%s/config.json", dirs[i], id);
			if (load_json(rel, doc) == 0)
				return 0;
		}
	}
	if (any || rt == RUNTIME_CRIO || rt == RUNTIME_PODMAN) {
		static const char *const dirs[] = {
			"/run/containers/storage/overlay-containers",
			"/var/lib/containers/storage/overlay-containers",
		};
		for (size_t i = 0; i < ARRAY_LEN(dirs); i++) {
			snprintf(rel, sizeof(rel), "%s/%s/userdata/config.json", dirs[i], id);
			if (load_json(rel, doc) == 0)
				return 0;
		}
	}
	return -ENOENT;
}

/* ---- podman's containers.json ------------------------------------------- */

/* Podman's own record: "names", "image" (an id) and "metadata", a JSON text
 * with "image-name". Returns 0 when id is listed. */
static int apply_podman_store(const char *id, struct coll_meta *m)
{
	struct json_doc doc;
	if (load_json("/var/lib/containers/storage/overlay-containers/containers.json", &doc) < 0)
		return -ENOENT;
	int rc = -ENOENT;
	const struct json *c = doc.root && doc.root->type == JSON_ARRAY ? doc.root->child : NULL;
	for (; c; c = c->next) {
		const char *cid = json_get_str(c, "id");
		if (cid && strcmp(cid, id) == 0)
			break;
	}
	if (c) {
		rc = 0;
		const struct json *names = json_get(c, "names");
		if (names && names->type == JSON_ARRAY && names->child &&
		    names->child->type == JSON_STRING)
			rc |= set_field(&m->name, names->child->string);
		const char *md = json_get_str(c, "metadata");
		struct json_doc mdoc;
		size_t off;
		if (md && json_parse(&mdoc, md, strlen(md), &off) == 0) {
			rc |= set_field(&m->image, json_get_str(mdoc.root, "image-name"));
			rc |= set_field(&m->name, json_get_str(mdoc.root, "name"));
			json_doc_free(&mdoc);
		}
		rc |= set_field(&m->image, json_get_str(c, "image"));
		if (m->started_at <= 0)
			m->started_at = parse_rfc3339(json_get_str(c, "created"));
		rc = rc ? -ENOMEM : 0;
	}
	json_doc_free(&doc);
	return rc;
}

/* ---- oci_lookup --------------------------------------------------------- */

/*
 * Fills m from the files of container id of runtime rt (RUNTIME_UNKNOWN
 * tries every place). Fields m already holds are kept: the first source
 * to know wins, so a caller may layer sources. Returns 0 when any file
 * answered, -ENOENT when none did (missing, malformed or over the cap),
 * -ENOMEM (m then holds what was copied; coll_meta_fini frees it).
 */
int oci_lookup(const char *id, enum coll_runtime rt, struct coll_meta *m)
{
	if (!safe_name(id))
		return -ENOENT;
	switch (rt) {
	case RUNTIME_NSPAWN:
	case RUNTIME_LXC:
	case RUNTIME_KUBEPOD:
	case RUNTIME__COUNT:
		return -ENOENT;
	default:
		break;
	}

	bool found = false;
	int rc = 0;
	char bundle[PATH_MAX] = "", ns[256];
	struct json_doc doc;
	if (find_state(id, rt, &doc, ns, sizeof(ns)) == 0) {
		found = true;
		rc = apply_state(doc.root, m, bundle, sizeof(bundle));
		json_doc_free(&doc);
	}
	if (rc == 0 && find_config(id, rt, bundle, ns, &doc) == 0) {
		found = true;
		rc = apply_config(doc.root, m);
		json_doc_free(&doc);
	}
	if (rc == 0 && (rt == RUNTIME_PODMAN || rt == RUNTIME_UNKNOWN)) {
		int prc = apply_podman_store(id, m);
		if (prc == 0)
			found = true;
		else if (prc == -ENOMEM)
			rc = prc;
	}
	if (rc < 0)
		return rc;
	return found ? 0 : -ENOENT;
}

/* ---- oci_scan_runc ------------------------------------------------------ */

/* Copies a cgroup path, tidied: leading '/', no trailing '/'; a path with
 * a ".." component is refused. */
static int copy_cgroup(char *out, size_t size, const char *p)
{
	size_t n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		if (j - i == 2 && p[i] == '.' && p[i + 1] == '.')
			return -EINVAL;
		i = j + 1;
	}
	size_t lead = n == 0 || p[0] != '/';
	if (n + lead + 1 > size)
		return -ENAMETOOLONG;
	if (lead)
		out[0] = '/';
	memcpy(out + lead, p, n);
	out[n + lead] = '\0';
	return 0;
}

/*
 * From runc's "cgroup_paths" (absolute, as mounted where runc ran): the
 * path below the hierarchy discovery walks, which is the v1 memory one (or
 * cpuacct, cpu, pids) when there are v1 controllers, else the v2 tree.
 */
static int from_cgroup_paths(const struct json *cp, char *out, size_t size)
{
	static const char root[] = "/sys/fs/cgroup/";
	static const char *const v1[] = { "memory", "cpuacct", "cpu", "pids" };
	if (!cp || cp->type != JSON_OBJECT)
		return -ENOENT;
	for (size_t i = 0; i < ARRAY_LEN(v1); i++) {
		const char *p = json_get_str(cp, v1[i]);
		if (!p || strncmp(p, root, sizeof(root) - 1) != 0)
			continue;
		/* skip the mount directory: "memory", or "cpu,cpuacct" */
		const char *rest = strchr(p + sizeof(root) - 1, '/');
		return copy_cgroup(out, size, rest ? rest : "/");
	}
	const char *u = json_get_str(cp, "");
	if (!u)
		return -ENOENT;
	/* with v1 controllers beside it, v2 is the hybrid's "unified" mount */
	const char *mnt = cp->count > 1 ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup";
	size_t ml = strlen(mnt);
	if (strncmp(u, mnt, ml) != 0 || (u[ml] != '/' && u[ml] != '\0'))
		return -ENOENT;
	return copy_cgroup(out, size, u + ml);
}

/* systemd's slice naming: "a-b-c.slice" lives at /a.slice/a-b.slice/a-b-c.slice;
 * "-.slice" is the root. Appends the slice's path to out. */
static int expand_slice(char *out, size_t size, const char *slice)
{
	size_t len = strlen(slice);
	if (strcmp(slice, "-.slice") == 0 || len == 0)
		return 0;
	if (len < 7 || strcmp(slice + len - 6, ".slice") != 0)
		return -EINVAL;
	size_t base = len - 6;
	for (size_t i = 0; i <= base; i++) {
		if (i != base && slice[i] != '-')
			continue;
		size_t o = strlen(out);
		if (o + i + 8 > size)
			return -ENAMETOOLONG;
		snprintf(out + o, size - o, "/%.*s.slice", (int)i, slice);
	}
	return 0;
}

/*
 * The cgroup of a runc container, relative to the hierarchy root: the
 * configured absolute path; else where runc put it (cgroup_paths), which also
 * covers relative paths and runc's default of "<its own cgroup>/<id>"; else
 * the systemd driver's <parent slice>/<prefix>-<name>.scope; else "/<id>".
 */
static int state_cgroup(const struct json *st, const char *id, char *out, size_t size)
{
	const struct json *cg = json_path(st, "config.cgroups");
	const char *path = json_get_str(cg, "path");
	if (path && path[0] == '/')
		return copy_cgroup(out, size, path);
	if (from_cgroup_paths(json_get(st, "cgroup_paths"), out, size) == 0)
		return 0;
	const char *parent = json_get_str(cg, "parent");
	const char *prefix = json_get_str(cg, "scope_prefix");
	const char *name = json_get_str(cg, "name");
	if ((parent && *parent) || (prefix && *prefix)) {
		out[0] = '\0';
		if (!name || !*name)
			name = id;
		int rc = expand_slice(out, size, parent && *parent ? parent : "system.slice");
		if (rc < 0)
			return rc;
		size_t o = strlen(out);
		size_t nl = strlen(name);
		int n;
		if (nl > 6 && strcmp(name + nl - 6, ".slice") == 0)
			n = snprintf(out + o, size - o, "/%s", name);
		else if (prefix && *prefix)
			n = snprintf(out + o, size - o, "/%s-%s.scope", prefix, name);
		else
			n = snprintf(out + o, size - o, "/%s.scope", name);
		return n < 0 || (size_t)n >= size - o ? -ENAMETOOLONG : 0;
	}
	if (snprintf(out, size, "/%s", id) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * Lists /run/runc/<id>/state.json and calls fn(arg, id, cgroup) for each
 * plain runc container. Containers whose cgroup cg_classify already claims
 * (CRI-O and podman keep their runc state there too) are left to the walk.
 * Returns the number reported, 0 when there is no /run/runc, or -errno
 * when it cannot be read. fn's strings live only during the call.
 */
int oci_scan_runc(oci_runc_fn fn, void *arg)
{
	char dir[PATH_MAX];
	int rc = hostroot_path(dir, sizeof(dir), "/run/runc");
	if (rc < 0)
		return rc;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	int count = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!safe_name(de->d_name))
			continue;
		char rel[PATH_MAX], cgroup[PATH_MAX];
		struct json_doc doc;
		if (snprintf(rel, sizeof(rel), "/run/runc/%s/state.json", de->d_name) >= (int)sizeof(rel) ||
		    load_json(rel, &doc) < 0)
			continue; /* not a container, or being written or removed */
		rc = state_cgroup(doc.root, de->d_name, cgroup, sizeof(cgroup));
		json_doc_free(&doc);
		struct cg_ident ident;
		if (rc < 0 || cg_classify(cgroup, &ident) == 1)
			continue;
		fn(arg, de->d_name, cgroup);
		count++;
	}
	closedir(d);
	return count;
}
