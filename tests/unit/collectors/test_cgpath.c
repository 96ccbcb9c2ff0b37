/*
 * test_cgpath.c - cg_classify against a table of real-world cgroup paths:
 * each runtime under the cgroupfs and systemd drivers, Kubernetes pods and
 * their containers, nested runtimes, and the helpers and slices that must
 * not count as containers.
 */
#include "collectors/collector.h"
#include "tests/unit/test.h"

#define A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define UID "2c6d4a3e-8b1f-4f0c-9c1a-3b7e5d2f6a10"
#define UIDU "2c6d4a3e_8b1f_4f0c_9c1a_3b7e5d2f6a10"

struct row {
	const char *path;
	int ret;
	enum coll_runtime rt;
	const char *id, *pod_uid, *qos;
};

static const struct row rows[] = {
	/* Docker */
	{ "/docker/" A, 1, RUNTIME_DOCKER, A, "", "" },
	{ "/docker/" A "/", 1, RUNTIME_DOCKER, A, "", "" },
	{ "docker/" A, 1, RUNTIME_DOCKER, A, "", "" },
	{ "/system.slice/docker-" A ".scope", 1, RUNTIME_DOCKER, A, "", "" },
	{ "/docker/" A "/docker/" B, 1, RUNTIME_DOCKER, B, "", "" },
	{ "/system.slice/docker-" A ".scope/system.slice/docker-" B ".scope", 1, RUNTIME_DOCKER, B, "", "" },
	{ "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-" A ".scope", 1, RUNTIME_DOCKER, A, "", "" },
	{ "/docker", 0, 0, "", "", "" },
	{ "/docker/" A "/init.scope", 0, 0, "", "", "" },
	{ "/docker/" A "/docker", 0, 0, "", "", "" },
	{ "/docker/0123456789abcdef", 0, 0, "", "", "" },
	{ "/docker/" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 0, 0, "", "", "" },
	{ "/system.slice/docker.service", 0, 0, "", "", "" },
	{ "/system.slice/docker-" A ".scope.bak", 0, 0, "", "", "" },
	{ "/system.slice/docker-" A, 0, 0, "", "", "" },

	/* containerd: ctr / nerdctl */
	{ "/default/" A, 1, RUNTIME_CONTAINERD, A, "", "" },
	{ "/default/redis", 1, RUNTIME_CONTAINERD, "redis", "", "" },
	{ "/default/my-app_1.v2", 1, RUNTIME_CONTAINERD, "my-app_1.v2", "", "" },
	{ "/k8s.io/" A, 1, RUNTIME_CONTAINERD, A, "", "" },
	{ "/buildkit/" A, 1, RUNTIME_CONTAINERD, A, "", "" },
	{ "/k8s.io/redis", 0, 0, "", "", "" },
	{ "/default", 0, 0, "", "", "" },
	{ "/default/-bad", 0, 0, "", "", "" },
	{ "/x/default/redis", 0, 0, "", "", "" },
	{ "/system.slice/nerdctl-" A ".scope", 1, RUNTIME_CONTAINERD, A, "", "" },
	{ "/system.slice/" A, 0, 0, "", "", "" },
	{ "/user.slice/" A, 0, 0, "", "", "" },
	{ "/process_api/5857e262b36bac0141c18cfaa93189ed", 0, 0, "", "", "" },
	{ "/process_api/5857e262b36bac0141c18cfaa93189ed/testid", 0, 0, "", "", "" },

	/* Kubernetes pods, cgroupfs driver */
	{ "/kubepods/pod" UID, 1, RUNTIME_KUBEPOD, UID, UID, "guaranteed" },
	{ "/kubepods/burstable/pod" UID, 1, RUNTIME_KUBEPOD, UID, UID, "burstable" },
	{ "/kubepods/besteffort/pod" UID, 1, RUNTIME_KUBEPOD, UID, UID, "besteffort" },
	{ "/kubepods/besteffort/pod" UID "/", 1, RUNTIME_KUBEPOD, UID, UID, "besteffort" },
	{ "/kubepods/pod6b2e6c8f6a3e5d3f9a1b2c3d4e5f6a7b", 1, RUNTIME_KUBEPOD,
	  "6b2e6c8f6a3e5d3f9a1b2c3d4e5f6a7b", "6b2e6c8f6a3e5d3f9a1b2c3d4e5f6a7b", "guaranteed" },
	{ "/kubepods", 0, 0, "", "", "" },
	{ "/kubepods/burstable", 0, 0, "", "", "" },
	{ "/kubepods/besteffort", 0, 0, "", "", "" },
	{ "/pod" UID, 0, 0, "", "", "" },
	{ "/other/pod" UID, 0, 0, "", "", "" },
	{ "/kubepods/weird/pod" UID, 0, 0, "", "", "" },
	{ "/kubepods/pod", 0, 0, "", "", "" },
	{ "/kubepods/podnot-a-uid", 0, 0, "", "", "" },
	{ "/kubepods/burstable/pod" UID "/" A, 1, RUNTIME_CONTAINERD, A, UID, "burstable" },
	{ "/kubepods/pod" UID "/" A, 1, RUNTIME_CONTAINERD, A, UID, "guaranteed" },
	{ "/kubepods/besteffort/pod" UID "/crio-" A, 1, RUNTIME_CRIO, A, UID, "besteffort" },
	{ "/kubepods/besteffort/pod" UID "/crio-conmon-" A, 0, 0, "", "", "" },
	{ "/kubepods/besteffort/pod" UID "/" A "/child", 0, 0, "", "", "" },
	{ "/kubepods/besteffort/pod" UID "/notacontainer", 0, 0, "", "", "" },
	/* kind / k3d: a node container holding the kubelet's tree */
	{ "/docker/" B "/kubepods/burstable/pod" UID "/" A, 1, RUNTIME_CONTAINERD, A, UID, "burstable" },
	{ "/docker/" B "/kubepods/burstable/pod" UID, 1, RUNTIME_KUBEPOD, UID, UID, "burstable" },

	/* Kubernetes pods, systemd driver */
	{ "/kubepods.slice/kubepods-pod" UIDU ".slice", 1, RUNTIME_KUBEPOD, UID, UID, "guaranteed" },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU ".slice", 1,
	  RUNTIME_KUBEPOD, UID, UID, "burstable" },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU ".slice", 1,
	  RUNTIME_KUBEPOD, UID, UID, "besteffort" },
	{ "/kubepods.slice", 0, 0, "", "", "" },
	{ "/kubepods.slice/kubepods-burstable.slice", 0, 0, "", "", "" },
	{ "/kubepods.slice/kubepods-besteffort.slice", 0, 0, "", "", "" },
	{ "/system.slice/kubelet.service", 0, 0, "", "", "" },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU ".slice/cri-containerd-" A ".scope",
	  1, RUNTIME_CONTAINERD, A, UID, "burstable" },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU ".slice/crio-" A ".scope",
	  1, RUNTIME_CRIO, A, UID, "besteffort" },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU ".slice/crio-conmon-" A ".scope",
	  0, 0, "", "", "" },
	{ "/kubepods.slice/kubepods-pod" UIDU ".slice/docker-" A ".scope", 1, RUNTIME_DOCKER, A, UID, "guaranteed" },
	{ "/kubepods.slice/kubepods-pod" UIDU ".slice/crio-" A ".scope/container", 0, 0, "", "", "" },
	/* kind's "kubelet" cgroup root */
	{ "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
	  "kubelet-kubepods-besteffort-pod" UIDU ".slice/cri-containerd-" A ".scope",
	  1, RUNTIME_CONTAINERD, A, UID, "besteffort" },
	{ "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" UIDU ".slice", 1, RUNTIME_KUBEPOD, UID, UID,
	  "guaranteed" },
	{ "/system.slice/notkubepods-pod" UIDU ".slice", 0, 0, "", "", "" },
	{ "/system.slice/kubepods-pod.slice", 0, 0, "", "", "" },
	{ "/system.slice/kubepods-pod" UID ".slice", 0, 0, "", "", "" },
	{ "/system.slice/kubepods-guaranteed-pod" UIDU ".slice", 0, 0, "", "", "" },

	/* CRI-O outside a pod slice */
	{ "/system.slice/crio-" A ".scope", 1, RUNTIME_CRIO, A, "", "" },
	{ "/system.slice/crio-conmon-" A ".scope", 0, 0, "", "", "" },
	{ "/system.slice/crio.service", 0, 0, "", "", "" },

	/* podman */
	{ "/machine.slice/libpod-" A ".scope", 1, RUNTIME_PODMAN, A, "", "" },
	{ "/machine.slice/libpod-" A ".scope/container", 0, 0, "", "", "" },
	{ "/machine.slice/libpod-conmon-" A ".scope", 0, 0, "", "", "" },
	{ "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" A ".scope", 1, RUNTIME_PODMAN, A, "", "" },
	{ "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" A ".scope/container", 0, 0, "", "", "" },
	{ "/libpod_parent/libpod-" A, 1, RUNTIME_PODMAN, A, "", "" },
	{ "/libpod_parent/libpod-conmon-" A, 0, 0, "", "", "" },
	{ "/libpod_parent/conmon", 0, 0, "", "", "" },
	{ "/libpod_parent", 0, 0, "", "", "" },
	{ "/machine.slice/machine-libpod_pod_" B ".slice/libpod-" A ".scope", 1, RUNTIME_PODMAN, A, "", "" },
	{ "/machine.slice/machine-libpod_pod_" B ".slice", 0, 0, "", "", "" },

	/* systemd-nspawn */
	{ "/machine.slice/systemd-nspawn@web.service", 1, RUNTIME_NSPAWN, "web", "", "" },
	{ "/machine.slice/systemd-nspawn@my\\x2dbox.service", 1, RUNTIME_NSPAWN, "my-box", "", "" },
	{ "/machine.slice/systemd-nspawn@web.service/payload", 0, 0, "", "", "" },
	{ "/machine.slice/systemd-nspawn@web.service/supervisor", 0, 0, "", "", "" },
	{ "/machine.slice/machine-web.scope", 1, RUNTIME_NSPAWN, "web", "", "" },
	{ "/machine.slice/machine-my\\x2dbox\\x2d2.scope", 1, RUNTIME_NSPAWN, "my-box-2", "", "" },
	{ "/machine.slice/machine-a\\x2fb.scope", 0, 0, "", "", "" },
	{ "/machine.slice/machine-.scope", 0, 0, "", "", "" },
	{ "/system.slice/machine-web.scope", 0, 0, "", "", "" },
	{ "/machine.slice", 0, 0, "", "", "" },
	{ "/machine.slice/systemd-nspawn@.service", 0, 0, "", "", "" },

	/* LXC */
	{ "/lxc/web", 1, RUNTIME_LXC, "web", "", "" },
	{ "/lxc/web/ns", 0, 0, "", "", "" },
	{ "/lxc", 0, 0, "", "", "" },
	{ "/lxc.payload.web", 1, RUNTIME_LXC, "web", "", "" },
	{ "/lxc.payload/web", 1, RUNTIME_LXC, "web", "", "" },
	{ "/lxc.monitor.web", 0, 0, "", "", "" },
	{ "/lxc.monitor/web", 0, 0, "", "", "" },
	{ "/lxc.pivot", 0, 0, "", "", "" },
	{ "/lxc.payload.", 0, 0, "", "", "" },
	{ "/lxc/web/docker/" A, 1, RUNTIME_DOCKER, A, "", "" },

	/* Neither */
	{ "/", 0, 0, "", "", "" },
	{ "", 0, 0, "", "", "" },
	{ "//", 0, 0, "", "", "" },
	{ "/init.scope", 0, 0, "", "", "" },
	{ "/user.slice", 0, 0, "", "", "" },
	{ "/user.slice/user-1000.slice", 0, 0, "", "", "" },
	{ "/user.slice/user-1000.slice/session-3.scope", 0, 0, "", "", "" },
	{ "/system.slice", 0, 0, "", "", "" },
	{ "/system.slice/ssh.service", 0, 0, "", "", "" },
	{ "/system.slice/sys-kernel-debug.mount", 0, 0, "", "", "" },
	{ "/system.slice/containerd.service", 0, 0, "", "", "" },
	{ "/system.slice/runc-" A ".scope", 0, 0, "", "", "" },
	{ "/testid", 0, 0, "", "", "" },
	{ "/" A, 0, 0, "", "", "" },
};

static void test_table(void)
{
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		const struct row *r = &rows[i];
		struct cg_ident id;
		memset(&id, 0xa5, sizeof(id)); /* classify must clear what it does not set */
		int ret = cg_classify(r->path, &id);
		if (ret != r->ret || (ret == 1 && id.runtime != r->rt) ||
		    strcmp(id.id, r->id) != 0 || strcmp(id.pod_uid, r->pod_uid) != 0 ||
		    strcmp(id.qos, r->qos) != 0) {
			fprintf(stderr, "  row %zu %s:\n    got %d %s id=\"%.80s\" pod=\"%.48s\" qos=\"%.16s\"\n"
				"    want %d %s id=\"%s\" pod=\"%s\" qos=\"%s\"\n",
				i, r->path, ret, coll_runtime_name(id.runtime), id.id, id.pod_uid, id.qos,
				r->ret, coll_runtime_name(r->rt), r->id, r->pod_uid, r->qos);
			t_cur_failed = 1;
		}
	}
}

static void test_zero_result_is_clean(void)
{
	struct cg_ident id;
	memset(&id, 0xa5, sizeof(id));
	CHECK_EQ_INT(cg_classify("/kubepods/burstable/pod" UID "/notacontainer", &id), 0);
	CHECK_EQ_INT(id.runtime, RUNTIME_UNKNOWN);
	CHECK_STR(id.id, "");
	CHECK_STR(id.pod_uid, "");
	CHECK_EQ_INT(cg_classify(NULL, &id), 0);
}

static void test_long_names(void)
{
	/* Names that do not fit the id field are refused, never truncated. */
	char path[512];
	struct cg_ident id;
	snprintf(path, sizeof(path), "/lxc/%0100d", 7);
	CHECK_EQ_INT(cg_classify(path, &id), 0);
	snprintf(path, sizeof(path), "/machine.slice/machine-%0100d.scope", 7);
	CHECK_EQ_INT(cg_classify(path, &id), 0);
	snprintf(path, sizeof(path), "/kubepods/pod%060d", 7);
	CHECK_EQ_INT(cg_classify(path, &id), 0);
	snprintf(path, sizeof(path), "/lxc/%079d", 7);
	CHECK_EQ_INT(cg_classify(path, &id), 1);
	CHECK_EQ_INT(strlen(id.id), 79);
}

static void test_speed(void)
{
	/* A walk classifies every directory; keep it well under a microsecond. */
	static const char *const paths[] = {
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU ".slice/cri-containerd-" A ".scope",
		"/system.slice/ssh.service", "/docker/" A, "/user.slice/user-1000.slice/session-3.scope",
	};
	struct cg_ident id;
	int n = 0;
	int64_t t0 = mono_ns();
	for (int i = 0; i < 200000; i++)
		n += cg_classify(paths[i & 3], &id);
	int64_t ns = mono_ns() - t0;
	CHECK_EQ_INT(n, 100000);
	fprintf(stderr, "  cg_classify: %.0f ns per path\n", (double)ns / 200000);
	CHECK(ns / 200000 < 10000); /* generous: sanitizer builds, busy hosts */
}

int main(void)
{
	RUN(test_table);
	RUN(test_zero_result_is_clean);
	RUN(test_long_names);
	RUN(test_speed);
	TEST_END();
}
