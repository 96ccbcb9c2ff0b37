/*
 * machine.c - the host's own CPU and memory totals, the denominators of
 * `docker stats`: CPU % divides a container's CPU time by the host's
 * (/proc/stat, the first seven fields of the "cpu" line, as the Docker
 * daemon's system_cpu_usage) and multiplies by the online CPUs (the number
 * of "cpuN" lines, as the daemon counts them); a container without a memory
 * limit is measured against MemTotal.
 *
 * The agent reads this once per tick, after the collectors, and emits it as
 * machine_* series; the files stay open and are re-read with pread. The
 * same reads give what `monitor top` shows in its header: the idle part of
 * the CPU time (idle + iowait), MemAvailable, and /proc/loadavg.
 */
#include "collectors/collector.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* /proc/stat grows with the CPU count (~100 bytes a CPU) and ends with long
 * interrupt lines; only the cpu lines at the start are parsed. */
#define MACHINE_STAT_CAP (4u << 20)

static int open_proc(const char *rel)
{
	char path[4096];
	if (hostroot_path(path, sizeof(path), rel) < 0)
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int coll_machine_open(struct coll_machine *m)
{
	memset(m, 0, sizeof(*m));
	m->stat_fd = m->meminfo_fd = m->loadavg_fd = -1;
	m->memory_available_bytes = -1;
	m->load[0] = m->load[1] = m->load[2] = -1;
	m->user_hz = sysconf(_SC_CLK_TCK);
	if (m->user_hz <= 0)
		m->user_hz = 100;
	int fd = open_proc("/proc/stat");
	if (fd < 0)
		return fd;
	m->stat_fd = fd;
	fd = open_proc("/proc/meminfo");
	if (fd < 0) {
		coll_machine_close(m);
		return fd;
	}
	m->meminfo_fd = fd;
	fd = open_proc("/proc/loadavg");   /* optional: the header's load only */
	m->loadavg_fd = fd >= 0 ? fd : -1;
	m->buf_size = 64 * 1024;
	m->buf = malloc(m->buf_size);
	if (!m->buf) {
		coll_machine_close(m);
		return -ENOMEM;
	}
	return 0;
}

void coll_machine_close(struct coll_machine *m)
{
	if (!m)
		return;
	if (m->stat_fd >= 0)
		close(m->stat_fd);
	if (m->meminfo_fd >= 0)
		close(m->meminfo_fd);
	if (m->loadavg_fd >= 0)
		close(m->loadavg_fd);
	free(m->buf);
	m->buf = NULL;
	m->stat_fd = m->meminfo_fd = m->loadavg_fd = -1;
}

/* Reads the whole file at fd into m->buf, growing it up to cap. Returns
 * the length or -errno (-EFBIG past cap). */
static ssize_t slurp(struct coll_machine *m, int fd, size_t cap)
{
	size_t len = 0;
	for (;;) {
		if (len + 1 >= m->buf_size) {
			if (m->buf_size >= cap)
				return -EFBIG;
			size_t size = m->buf_size * 2 > cap ? cap : m->buf_size * 2;
			char *p = realloc(m->buf, size);
			if (!p)
				return -ENOMEM;
			m->buf = p;
			m->buf_size = size;
		}
		ssize_t n = pread(fd, m->buf + len, m->buf_size - 1 - len, (off_t)len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	m->buf[len] = '\0';
	return (ssize_t)len;
}

int coll_machine_parse_stat(const char *text, long user_hz, double *cpu_seconds, int *cpus)
{
	*cpus = 0;
	bool total = false;
	for (const char *line = text; line && *line;) {
		const char *eol = strchr(line, '\n');
		if (strncmp(line, "cpu", 3) != 0)
			break;          /* the cpu lines come first, together */
		if (line[3] == ' ') {
			/* user nice system idle iowait irq softirq: what the daemon
			 * sums (steal, guest, guest_nice left out, as it does). */
			const char *p = line + 3;
			unsigned long long sum = 0;
			for (int i = 0; i < 7; i++) {
				char *end;
				unsigned long long v = strtoull(p, &end, 10);
				if (end == p)
					return -EINVAL;
				sum += v;
				p = end;
			}
			*cpu_seconds = (double)sum / (double)user_hz;
			total = true;
		} else if (line[3] >= '0' && line[3] <= '9') {
			(*cpus)++;
		}
		line = eol ? eol + 1 : NULL;
	}
	return total && *cpus > 0 ? 0 : -EINVAL;
}

int coll_machine_parse_meminfo(const char *text, double *memory_bytes)
{
	const char *p = strstr(text, "MemTotal:");
	if (!p || (p != text && p[-1] != '\n'))
		return -EINVAL;
	char *end;
	unsigned long long kb = strtoull(p + 9, &end, 10);
	if (end == p + 9)
		return -EINVAL;
	*memory_bytes = (double)kb * 1024.0;
	return 0;
}

int coll_machine_parse_idle(const char *text, long user_hz, double *idle_seconds)
{
	if (strncmp(text, "cpu ", 4) != 0)
		return -EINVAL;
	const char *p = text + 4;
	unsigned long long f[5];
	for (int i = 0; i < 5; i++) {
		char *end;
		f[i] = strtoull(p, &end, 10);
		if (end == p)
			return -EINVAL;
		p = end;
	}
	*idle_seconds = (double)(f[3] + f[4]) / (double)user_hz;
	return 0;
}

int coll_machine_parse_available(const char *text, double *bytes)
{
	const char *p = strstr(text, "\nMemAvailable:");
	if (!p)
		return -ENOENT;
	p += 14;
	char *end;
	unsigned long long kb = strtoull(p, &end, 10);
	if (end == p)
		return -EINVAL;
	*bytes = (double)kb * 1024.0;
	return 0;
}

int coll_machine_parse_loadavg(const char *text, double load[3])
{
	const char *p = text;
	for (int i = 0; i < 3; i++) {
		char *end;
		load[i] = strtod(p, &end);
		if (end == p || load[i] < 0 || load[i] != load[i])
			return -EINVAL;
		p = end;
	}
	return 0;
}

int coll_machine_read(struct coll_machine *m)
{
	if (m->stat_fd < 0)
		return -EBADF;
	ssize_t n = slurp(m, m->stat_fd, MACHINE_STAT_CAP);
	if (n < 0)
		return (int)n;
	double cpu_seconds, idle = 0;
	int cpus;
	if (coll_machine_parse_stat(m->buf, m->user_hz, &cpu_seconds, &cpus) < 0 ||
	    coll_machine_parse_idle(m->buf, m->user_hz, &idle) < 0)
		return -EINVAL;
	n = slurp(m, m->meminfo_fd, MACHINE_STAT_CAP);
	if (n < 0)
		return (int)n;
	double mem, avail = -1;
	if (coll_machine_parse_meminfo(m->buf, &mem) < 0)
		return -EINVAL;
	if (coll_machine_parse_available(m->buf, &avail) < 0)
		avail = -1;
	m->cpu_seconds = cpu_seconds;
	m->idle_seconds = idle;
	m->cpus = cpus;
	m->memory_bytes = mem;
	m->memory_available_bytes = avail;
	m->load[0] = m->load[1] = m->load[2] = -1;
	if (m->loadavg_fd >= 0 && slurp(m, m->loadavg_fd, 4096) > 0 &&
	    coll_machine_parse_loadavg(m->buf, m->load) < 0)
		m->load[0] = m->load[1] = m->load[2] = -1;
	return 0;
}
