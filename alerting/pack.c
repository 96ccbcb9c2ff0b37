/*
 * pack.c - the default rule pack (alerting/rules/containers.yml) built into
 * the binary, so an agent installed as one file still has its container
 * rules and the rules always match the metrics of the same build.
 *
 * The assembler's .incbin copies the YAML file into .rodata at build time
 * (the Makefile makes this object depend on it). The rules engine reads
 * rule files by path, so at start-up the agent writes the pack to a file in
 * its data directory (alert_pack_install) and adds that path to the rule
 * files; the file is rewritten only when its content differs, and users see
 * and check exactly what runs (`monitor rules check <data_dir>/default_rules.yml`).
 */
#include "alerting/alerting.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__asm__(".pushsection .rodata\n"
	".balign 16\n"
	".globl alert_pack_begin\n"
	".hidden alert_pack_begin\n"
	"alert_pack_begin:\n"
	".incbin \"alerting/rules/containers.yml\"\n"
	".globl alert_pack_end\n"
	".hidden alert_pack_end\n"
	"alert_pack_end:\n"
	".byte 0\n"
	".popsection\n");

extern const char alert_pack_begin[], alert_pack_end[];

const char *alert_pack_text(size_t *len)
{
	if (len)
		*len = (size_t)(alert_pack_end - alert_pack_begin);
	return alert_pack_begin;
}

/* Whether path holds exactly text (n bytes). */
static bool same_content(const char *path, const char *text, size_t n)
{
	char *old = malloc(n + 2);
	if (!old)
		return false;
	ssize_t got = read_file(path, old, n + 2);
	bool same = got >= 0 && (size_t)got == n && memcmp(old, text, n) == 0;
	free(old);
	return same;
}

int alert_pack_install(const char *path, char *err, size_t errsize)
{
	size_t n;
	const char *text = alert_pack_text(&n);
	if (same_content(path, text, n))
		return 0;
	char tmp[4200];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(err, errsize, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errsize, "%s: %s", tmp, strerror(e));
		return -e;
	}
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(fd, text + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			snprintf(err, errsize, "%s: %s", tmp, strerror(e));
			close(fd);
			unlink(tmp);
			return -e;
		}
		off += (size_t)w;
	}
	int rc = fsync(fd) < 0 ? -errno : 0;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		int e = -rc;
		snprintf(err, errsize, "%s: %s", path, strerror(e));
		unlink(tmp);
		return -e;
	}
	return 0;
}
