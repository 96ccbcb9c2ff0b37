/* test_hostfs.c - the host's filesystems from a mount table: block devices
 * only, each device once at its first mountpoint, octal escapes undone,
 * and a real statfs of / emitted as machine_fs_*. */
#include "tests/unit/test.h"
#include "collectors/collector.h"

static void test_parse(void)
{
	const char *mounts =
		"sysfs /sys sysfs rw,nosuid 0 0\n"
		"/dev/vda1 / ext4 rw,relatime 0 0\n"
		"overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n"
		"/dev/vda1 /var/lib/docker ext4 rw 0 0\n"
		"/dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n"
		"/dev/loop0 /snap/core squashfs ro 0 0\n"
		"tmpfs /run tmpfs rw 0 0\n";
	struct coll_hostfs h = { 0 };
	CHECK(coll_hostfs_parse(mounts, &h) == 0);
	CHECK_EQ_INT(h.n, 2);
	CHECK_STR(h.m[0].device, "/dev/vda1");
	CHECK_STR(h.m[0].mountpoint, "/");
	CHECK_STR(h.m[1].device, "/dev/sdb1");
	CHECK_STR(h.m[1].mountpoint, "/mnt/my disk");
	CHECK(coll_hostfs_parse("", &h) == 0 && h.n == 0);
}

static void test_emit_root(void)
{
	struct coll_hostfs h = { 0 };
	CHECK(coll_hostfs_parse("/dev/root / ext4 rw 0 0\n", &h) == 0);
	h.last_scan_ms = 1;              /* keep the table: no rescan of the real one */
	struct coll_sink sink;
	CHECK(sink_open(&sink, 2) == 0);
	coll_hostfs_emit(&h, &sink, 2);
	struct snapshot *s = sink_close(&sink);
	double use = -1, lim = -1;
	for (size_t i = 0; i < s->nsamples; i++) {
		if (s->samples[i].family == M_MACHINE_FS_USAGE)
			use = s->samples[i].value;
		if (s->samples[i].family == M_MACHINE_FS_LIMIT)
			lim = s->samples[i].value;
		CHECK_STR(s->samples[i].extra, "device=\"/dev/root\",mountpoint=\"/\"");
	}
	CHECK(lim > 0 && use >= 0 && use <= lim);
	snapshot_unref(s);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_emit_root);
	TEST_END();
}
