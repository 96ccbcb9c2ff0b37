/*
 * hostfs.c - the host's filesystems: size and use of every block-device
 * filesystem in the host's mount table (machine_fs_usage_bytes,
 * machine_fs_limit_bytes), for the host's disk forecasts.
 *
 * The mount table is <host-root>/proc/1/mounts (init's view: the host's,
 * also when the agent runs in a container), read again every
 * HOSTFS_RESCAN_MS; each device is reported once, at its first mountpoint.
 * Every tick costs one statfs(2) per filesystem. Tick thread only.
 */
#include "collectors/collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

#define HOSTFS_RESCAN_MS (60 * 1000)
#define HOSTFS_FILE_CAP (1u << 20)

/* Undoes the octal escapes of /proc/mounts (\040 for a space). */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

int coll_hostfs_parse(const char *text, struct coll_hostfs *h)
{
	h->n = 0;
	const char *line = text;
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[2 * PATH_MAX], dev[PATH_MAX], mnt[PATH_MAX], type[64];
		if (len < sizeof(buf)) {
			memcpy(buf, line, len);
			buf[len] = '\0';
			if (sscanf(buf, "%4095s %4095s %63s", dev, mnt, type) == 3 &&
			    !strncmp(dev, "/dev/", 5) && strcmp(type, "squashfs") &&
			    strcmp(type, "iso9660")) {
				unescape(dev);
				unescape(mnt);
				bool seen = false;
				for (size_t i = 0; i < h->n && !seen; i++)
					seen = !strcmp(h->m[i].device, dev);
				size_t dl = strlen(dev), ml = strlen(mnt);
				/* longer names than the table holds are left out, not cut */
				if (!seen && h->n < COLL_HOSTFS_MAX && dl < sizeof(h->m[0].device) &&
				    ml < sizeof(h->m[0].mountpoint)) {
					memcpy(h->m[h->n].device, dev, dl + 1);
					memcpy(h->m[h->n].mountpoint, mnt, ml + 1);
					h->n++;
				}
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

static void rescan(struct coll_hostfs *h, int64_t now)
{
	char path[PATH_MAX];
	h->last_scan_ms = now;
	char *text = malloc(HOSTFS_FILE_CAP);
	if (!text)
		return;
	ssize_t n = -ENOENT;
	if (hostroot_path(path, sizeof(path), "/proc/1/mounts") == 0)
		n = read_file(path, text, HOSTFS_FILE_CAP);
	if (n < 0 && hostroot_path(path, sizeof(path), "/proc/self/mounts") == 0)
		n = read_file(path, text, HOSTFS_FILE_CAP);
	if (n >= 0)
		coll_hostfs_parse(text, h);
	free(text);
}

void coll_hostfs_emit(struct coll_hostfs *h, struct coll_sink *sink, int64_t now)
{
	if (!h->last_scan_ms || now - h->last_scan_ms >= HOSTFS_RESCAN_MS)
		rescan(h, now);
	for (size_t i = 0; i < h->n; i++) {
		char path[PATH_MAX], extra[3 * PATH_MAX];
		struct statfs st;
		if (hostroot_path(path, sizeof(path), h->m[i].mountpoint) < 0 ||
		    statfs(path, &st) < 0 || st.f_blocks == 0)
			continue;
		struct buf b = { 0 };
		buf_init(&b, sizeof(extra));
		buf_puts(&b, "device=");
		buf_put_label_value(&b, h->m[i].device);
		buf_puts(&b, ",mountpoint=");
		buf_put_label_value(&b, h->m[i].mountpoint);
		if (!b.overflow) {
			double frsize = st.f_frsize ? (double)st.f_frsize : (double)st.f_bsize;
			sink_emit(sink, M_MACHINE_FS_USAGE, b.data,
				  (double)(st.f_blocks - st.f_bfree) * frsize);
			sink_emit(sink, M_MACHINE_FS_LIMIT, b.data, (double)st.f_blocks * frsize);
		}
		buf_fini(&b);
	}
}
