/*
 * test_oci.c - oci_lookup and oci_scan_runc against a fixture host root
 * (tests/fixtures/oci/host: runc, Docker, containerd with Kubernetes,
 * nerdctl, CRI-O and podman files, plus malformed and missing ones), a
 * generated host root for the file-size cap, and, as root with runc and
 * busybox-static installed, a real runc container.
 */
#include "collectors/collector.h"
#include "tests/unit/test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOST FIXTURES "/oci/host"
#define DOCKER "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"
#define CTRD "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"
#define SANDBOX "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
#define NERD "aeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeaeae"
#define CRIO "cfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcfcf"
#define CRIO_SB "cbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcb"
#define PODMAN "9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d9d"
#define BADCFG "bcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcbc"

static void meta_init(struct coll_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->restart_count = -1;
}

static void use_fixture(void)
{
	int rc = hostroot_set(HOST);
	if (rc)
		fprintf(stderr, "  hostroot_set(%s): %s\n", HOST, strerror(-rc));
	CHECK_EQ_INT(rc, 0);
}

/* ---- oci_lookup ---------------------------------------------------------- */

static void test_runc_plain(void)
{
	use_fixture();
	struct coll_meta m;
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup("web1", RUNTIME_RUNC, &m), 0);
	CHECK_EQ_DBL(m.started_at, 1795966448.389637281);
	CHECK_STR(m.state, "running");
	CHECK_STR(m.compose_project, "shop");
	CHECK_STR(coll_meta_label(&m, "org.example.team"), "payments");
	CHECK_STR(coll_meta_label(&m, "org.example.empty"), "");
	CHECK_EQ_INT(m.nlabels, 3);
	CHECK(m.name == NULL && m.image == NULL && m.pod == NULL);
	CHECK_EQ_INT(m.restart_count, -1);
	coll_meta_fini(&m);
}

static void test_runc_status(void)
{
	use_fixture();
	static const struct {
		const char *id, *state;
		double started_at;
	} cases[] = {
		{ "frozen1", "paused", 1767323045 },   /* v1 freezer says FROZEN */
		{ "gone1", "stopped", 1767323045 },    /* pid gone; time had +02:00 */
		{ "zombie1", "stopped", 1767323045 },  /* init is a zombie */
		{ "reused1", "stopped", 1767323045 },  /* pid alive, other start time */
		{ "v2only", "running", 1767323045.5 }, /* cgroup.freeze is 0 */
		{ "sysd1", "stopped", 1767323045 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct coll_meta m;
		meta_init(&m);
		CHECK_EQ_INT(oci_lookup(cases[i].id, RUNTIME_RUNC, &m), 0);
		CHECK_STR(m.state, cases[i].state);
		CHECK_EQ_DBL(m.started_at, cases[i].started_at);
		coll_meta_fini(&m);
	}
}

static void test_containerd_k8s(void)
{
	use_fixture();
	struct coll_meta m;
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup(CTRD, RUNTIME_CONTAINERD, &m), 0);
	CHECK_STR(m.pod, "api-5f6d8");
	CHECK_STR(m.namespace, "shop");
	CHECK_STR(m.container, "api");
	CHECK_STR(m.name, "api");
	CHECK_STR(m.image, "registry.example.com/shop/api:v3");
	CHECK_EQ_DBL(m.started_at, 1770091506.123);
	CHECK_STR(m.state, "stopped"); /* its pid is not in the fixture's /proc */
	CHECK_STR(coll_meta_label(&m, "io.kubernetes.cri.sandbox-id"), SANDBOX);
	CHECK_EQ_INT(m.nlabels, 7);
	coll_meta_fini(&m);

	/* The pause container: no state, found by scanning the task namespaces. */
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup(SANDBOX, RUNTIME_CONTAINERD, &m), 0);
	CHECK_STR(m.container, "POD");
	CHECK_STR(m.name, "POD");
	CHECK_STR(m.pod, "api-5f6d8");
	CHECK_STR(m.namespace, "shop");
	CHECK(m.image == NULL && m.state == NULL);
	CHECK_EQ_DBL(m.started_at, 0);
	coll_meta_fini(&m);

	/* Not knowing the runtime finds it too. */
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup(CTRD, RUNTIME_UNKNOWN, &m), 0);
	CHECK_STR(m.container, "api");
	coll_meta_fini(&m);
}

static void test_nerdctl(void)
{
	use_fixture();
	struct coll_meta m;
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup(NERD, RUNTIME_CONTAINERD, &m), 0);
	CHECK_STR(m.name, "web");
	CHECK(m.pod == NULL && m.container == NULL);
	CHECK_STR(coll_meta_label(&m, "nerdctl/platform"), "linux/amd64");
	CHECK_EQ_DBL(m.started_at, 1770091506);
	coll_meta_fini(&m);
}

static void test_crio(void)
{
	use_fixture();
	struct coll_meta m;
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup(CRIO, RUNTIME_CRIO, &m), 0);
	CHECK_STR(m.container, "nginx");
	CHECK_STR(m.name, "nginx");
	CHECK_STR(m.pod, "web-7d4b9c");
	CHECK_STR(m.namespace, "shop");
	CHECK_STR(m.image, "docker.io/library/nginx:1.25");
	CHECK_EQ_INT(m.restart_count, 2);
	/* the state's time wins over the annotation's */
	CHECK_EQ_DBL(m.started_at, 1772600767.000000001);
	CHECK_STR(coll_meta_label(&m, "io.kubernetes.pod.uid"), "2c6d4a3e-8b1f-4f0c-9c1a-3b7e5d2f6a10");
	/* a 5 kB annotation is not a label */
	CHECK(coll_meta_label(&m, "io.kubernetes.cri-o.Labels") == NULL);
	CHECK_EQ_INT(m.nlabels, 8);
	coll_meta_fini(&m);

	meta_init(&m);
	CHECK_EQ_INT(oci_lookup(CRIO_SB, RUNTIME_CRIO, &m), 0);
	CHECK_STR(m.container, "POD");
	CHECK_STR(m.pod, "web-7d4b9c");
	CHECK_EQ_DBL(m.started_at, 0);
	coll_meta_fini(&m);
}

static void test_podman(void)
{
	use_fixture();
	struct coll_meta m;
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup(PODMAN, RUNTIME_PODMAN, &m), 0);
	CHECK_STR(m.name, "db");
	CHECK_STR(m.image, "docker.io/library/postgres:16");
	CHECK_EQ_DBL(m.started_at, 1767225600.25);
	CHECK_STR(coll_meta_label(&m, "io.container.manager"), "libpod");
	CHECK(m.state == NULL);
	coll_meta_fini(&m);
}

static void test_docker(void)
{
	use_fixture();
	struct coll_meta m;
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup(DOCKER, RUNTIME_DOCKER, &m), 0);
	CHECK_EQ_DBL(m.started_at, 1795966462.906117544);
	CHECK_EQ_INT(m.nlabels, 0);
	coll_meta_fini(&m);
}

static void test_layering(void)
{
	/* What the caller already knows stays; a second lookup adds nothing twice. */
	use_fixture();
	struct coll_meta m;
	meta_init(&m);
	m.name = strdup("from-docker");
	m.started_at = 42;
	CHECK_EQ_INT(oci_lookup(CTRD, RUNTIME_CONTAINERD, &m), 0);
	size_t n = m.nlabels;
	CHECK_EQ_INT(oci_lookup(CTRD, RUNTIME_CONTAINERD, &m), 0);
	CHECK_STR(m.name, "from-docker");
	CHECK_EQ_DBL(m.started_at, 42);
	CHECK_STR(m.pod, "api-5f6d8");
	CHECK_EQ_INT(m.nlabels, n);
	coll_meta_fini(&m);
}

static void test_malformed_and_missing(void)
{
	use_fixture();
	struct coll_meta m;
	meta_init(&m);
	/* truncated state.json, nothing else */
	CHECK_EQ_INT(oci_lookup("bad", RUNTIME_RUNC, &m), -ENOENT);
	CHECK(m.state == NULL && m.nlabels == 0);
	CHECK_EQ_DBL(m.started_at, 0);
	/* good state, malformed config.json: the state still counts */
	CHECK_EQ_INT(oci_lookup(BADCFG, RUNTIME_CONTAINERD, &m), 0);
	CHECK_EQ_DBL(m.started_at, 1770091506);
	CHECK_EQ_INT(m.nlabels, 0);
	coll_meta_fini(&m);

	static const char *const bad_ids[] = { "nope", "", ".", "..", "../runc/web1", "creating" };
	for (size_t i = 0; i < ARRAY_LEN(bad_ids); i++) {
		meta_init(&m);
		CHECK_EQ_INT(oci_lookup(bad_ids[i], RUNTIME_UNKNOWN, &m), -ENOENT);
		coll_meta_fini(&m);
	}
	/* runtimes without OCI files, and the wrong runtime's places */
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup("web1", RUNTIME_NSPAWN, &m), -ENOENT);
	CHECK_EQ_INT(oci_lookup("web1", RUNTIME_LXC, &m), -ENOENT);
	CHECK_EQ_INT(oci_lookup("web1", RUNTIME_KUBEPOD, &m), -ENOENT);
	CHECK_EQ_INT(oci_lookup("web1", RUNTIME_DOCKER, &m), -ENOENT);
	CHECK_EQ_INT(oci_lookup(CTRD, RUNTIME_RUNC, &m), -ENOENT);
	CHECK(m.state == NULL && m.nlabels == 0);
	coll_meta_fini(&m);
}

/* ---- oci_scan_runc -------------------------------------------------------- */

struct seen {
	int n;
	char id[16][80];
	char cgroup[16][256];
};

static void collect(void *arg, const char *id, const char *cgroup)
{
	struct seen *s = arg;
	if (s->n < 16) {
		snprintf(s->id[s->n], sizeof(s->id[0]), "%s", id);
		snprintf(s->cgroup[s->n], sizeof(s->cgroup[0]), "%s", cgroup);
	}
	s->n++;
}

static const char *seen_cgroup(const struct seen *s, const char *id)
{
	for (int i = 0; i < s->n && i < 16; i++)
		if (strcmp(s->id[i], id) == 0)
			return s->cgroup[i];
	return NULL;
}

static void test_scan(void)
{
	use_fixture();
	struct seen s = { 0 };
	int n = oci_scan_runc(collect, &s);
	CHECK_EQ_INT(n, 7);
	CHECK_EQ_INT(s.n, 7);
	/* runc without cgroupsPath, started from a nested memory cgroup */
	CHECK_STR(seen_cgroup(&s, "web1"), "/process_api/5857e262b36bac0141c18cfaa93189ed/web1");
	CHECK_STR(seen_cgroup(&s, "frozen1"), "/frozen1");
	CHECK_STR(seen_cgroup(&s, "gone1"), "/gone1");
	CHECK_STR(seen_cgroup(&s, "zombie1"), "/custom/zombie1");
	/* configured path, no cgroup_paths */
	CHECK_STR(seen_cgroup(&s, "reused1"), "/custom/reused1");
	/* pure v2 */
	CHECK_STR(seen_cgroup(&s, "v2only"), "/mygroup/v2only");
	/* systemd driver: parent slice + prefix-name.scope */
	CHECK_STR(seen_cgroup(&s, "sysd1"), "/user.slice/user-1000.slice/runc-sysd1.scope");
	/* CRI-O's runc state is CRI-O's (a crio scope in a pod slice), not plain runc */
	CHECK(seen_cgroup(&s, CRIO) == NULL);
	CHECK(seen_cgroup(&s, "bad") == NULL && seen_cgroup(&s, "creating") == NULL);
}

/* ---- generated host roots ------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int write_file(const char *path, const char *text, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, text, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -EIO;
}

/* A valid state.json of exactly size bytes (padded with a long label). */
static int write_state(const char *root, const char *id, size_t size)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/run/runc/%s", root, id);
	if (mkdir(path, 0755) < 0)
		return -errno;
	static const char head[] = "{\"id\":\"x\",\"created\":\"2026-01-02T03:04:05Z\","
				   "\"config\":{\"cgroups\":{\"path\":\"/big\"}},\"pad\":\"";
	static const char tail[] = "\"}";
	char *text = malloc(size);
	if (!text)
		return -ENOMEM;
	memset(text, 'x', size);
	memcpy(text, head, sizeof(head) - 1);
	memcpy(text + size - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
	strcat(path, "/state.json");
	int rc = write_file(path, text, size);
	free(text);
	return rc;
}

static void test_size_cap(void)
{
	char root[] = "/tmp/monitor-oci-cap-XXXXXX";
	if (!mkdtemp(root))
		SKIP("mkdtemp failed");
	char path[512];
	snprintf(path, sizeof(path), "%s/run", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/run/runc", root);
	mkdir(path, 0755);
	CHECK_EQ_INT(write_state(root, "fits", 1 << 20), 0);
	CHECK_EQ_INT(write_state(root, "toobig", (1 << 20) + 1), 0);
	CHECK_EQ_INT(hostroot_set(root), 0);

	struct coll_meta m;
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup("fits", RUNTIME_RUNC, &m), 0);
	CHECK_EQ_DBL(m.started_at, 1767323045);
	coll_meta_fini(&m);
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup("toobig", RUNTIME_RUNC, &m), -ENOENT);
	coll_meta_fini(&m);

	struct seen s = { 0 };
	CHECK_EQ_INT(oci_scan_runc(collect, &s), 1);
	CHECK_STR(s.id[0], "fits");
	CHECK_STR(s.cgroup[0], "/big");

	/* no /run/runc at all: nothing to report, no error */
	snprintf(path, sizeof(path), "%s/run/runc", root);
	rm_tree(path);
	s.n = 0;
	CHECK_EQ_INT(oci_scan_runc(collect, &s), 0);
	CHECK_EQ_INT(s.n, 0);
	rm_tree(root);
}

/* ---- a real runc container ---------------------------------------------- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* The cgroup discovery walks for pid: the v1 memory one, else the v2 one. */
static int proc_cgroup(long pid, char *out, size_t size)
{
	char path[64], text[8192];
	snprintf(path, sizeof(path), "/proc/%ld/cgroup", pid);
	if (read_file(path, text, sizeof(text)) < 0)
		return -1;
	const char *v2 = NULL;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *ctrls = c1 + 1;
		if (!*ctrls) {
			v2 = c2 + 1;
			continue;
		}
		for (const char *p = ctrls; (p = strstr(p, "memory")); p += 6)
			if ((p == ctrls || p[-1] == ',') && (p[6] == '\0' || p[6] == ',')) {
				snprintf(out, size, "%s", c2 + 1);
				return 0;
			}
	}
	if (!v2)
		return -1;
	snprintf(out, size, "%s", v2);
	return 0;
}

static void runc_cleanup(const char *dir, const char *id)
{
	sh("runc kill %s KILL >/dev/null 2>&1; runc delete -f %s >/dev/null 2>&1", id, id);
	rm_tree(dir);
}

static void test_real_runc(void)
{
	if (geteuid() != 0)
		SKIP("needs root to run a runc container");
	if (sh("runc --version >/dev/null 2>&1") != 0)
		SKIP("runc is not installed (.ci/install-deps)");
	if (access("/bin/busybox", X_OK) != 0)
		SKIP("busybox-static is not installed (.ci/install-deps)");

	char dir[] = "/tmp/monitor-oci-runc-XXXXXX";
	if (!mkdtemp(dir))
		SKIP("mkdtemp failed");
	char id[64];
	snprintf(id, sizeof(id), "monitor-oci-test-%d", (int)getpid());

	int rc = sh("set -e; cd %s; mkdir -p rootfs/bin; cp /bin/busybox rootfs/bin/busybox;"
		    "ln -s busybox rootfs/bin/sh; ln -s busybox rootfs/bin/sleep;"
		    "runc spec; sed -i -e 's/\"terminal\": true/\"terminal\": false/'"
		    " -e 's/^\\([[:space:]]*\\)\"sh\"$/\\1\"sleep\", \"1000\"/' config.json;"
		    "grep -q '\"sleep\", \"1000\"' config.json", dir);
	CHECK_EQ_INT(rc, 0);
	if (rc != 0) {
		runc_cleanup(dir, id);
		return;
	}
	double t0 = (double)time(NULL);
	if (sh("runc run -d --bundle %s %s </dev/null >/dev/null 2>%s/run.err", dir, id, dir) != 0) {
		char err[1024] = "", path[600];
		snprintf(path, sizeof(path), "%s/run.err", dir);
		read_file(path, err, sizeof(err));
		fprintf(stderr, "  runc run: %s\n", err);
		runc_cleanup(dir, id);
		SKIP("runc cannot start containers here");
	}
	double t1 = (double)time(NULL);

	/* Its init pid and cgroup, as runc and the kernel tell them. */
	char out[4096] = "", path[600], want[PATH_MAX] = "";
	snprintf(path, sizeof(path), "%s/state.out", dir);
	sh("runc state %s > %s", id, path);
	read_file(path, out, sizeof(out));
	const char *p = strstr(out, "\"pid\":");
	long pid = p ? strtol(p + 6, NULL, 10) : 0;
	CHECK(pid > 0);
	CHECK_EQ_INT(proc_cgroup(pid, want, sizeof(want)), 0);

	CHECK_EQ_INT(hostroot_set("/"), 0);
	struct seen s = { 0 };
	CHECK(oci_scan_runc(collect, &s) >= 1);
	const char *got = seen_cgroup(&s, id);
	CHECK_STR(got, want);
	fprintf(stderr, "  runc container %s: cgroup %s\n", id, got ? got : "(not found)");

	struct coll_meta m;
	meta_init(&m);
	CHECK_EQ_INT(oci_lookup(id, RUNTIME_RUNC, &m), 0);
	CHECK(m.started_at >= t0 - 1 && m.started_at <= t1 + 1);
	CHECK_STR(m.state, "running");
	coll_meta_fini(&m);

	runc_cleanup(dir, id);
	snprintf(path, sizeof(path), "/run/runc/%s", id);
	CHECK(access(path, F_OK) != 0); /* runc forgot it */
}

int main(void)
{
	RUN(test_runc_plain);
	RUN(test_runc_status);
	RUN(test_containerd_k8s);
	RUN(test_nerdctl);
	RUN(test_crio);
	RUN(test_podman);
	RUN(test_docker);
	RUN(test_layering);
	RUN(test_malformed_and_missing);
	RUN(test_scan);
	RUN(test_size_cap);
	RUN(test_real_runc);
	TEST_END();
}
