/*
 * fuzz_procfs.c - the cgroup and /proc file parsers, which read files a
 * container's processes can shape (its comm, its mounts, its sockets): the
 * first input byte picks the parser, the rest is the file's text.
 * cgroup.c: flat-keyed files (memory.stat, cpu.stat), PSI, cpuset lists;
 * procfs.c: /proc/<pid>/stat, net/dev, net/tcp[6] and udp[6];
 * machine.c: /proc/stat, meminfo, loadavg; hostfs.c: mounts.
 */
#include "tests/fuzz/fuzz.h"
#include "agent/util/util.h"
#include "collectors/collector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned pick = data[0];
	char *text = fuzz_cstr(data + 1, size - 1);
	switch (pick % 10) {
	case 0:
		(void)cg_kv_get(text, "anon");
		(void)cg_kv_get(text, "usage_usec");
		(void)cg_kv_get(text, "");
		break;
	case 1:
		(void)cg_psi_total_us(text, pick & 0x10);
		break;
	case 2:
		(void)cg_cpuset_count(text);
		break;
	case 3: {
		struct proc_stat st;
		(void)proc_parse_stat(text, &st);
		break;
	}
	case 4: {
		struct proc_netdev nd[8];
		size_t total = 0;
		(void)proc_parse_netdev(text, nd, 8, &total);
		break;
	}
	case 5: {
		struct proc_socket so[8];
		size_t total = 0;
		int proto = pick & 0x10 ? PROC_UDP : PROC_TCP;
		int fam = pick & 0x20 ? PROC_AF_INET6 : PROC_AF_INET;
		(void)proc_parse_sockets(text, proto, fam, pick & 0x40, so, 8, &total);
		break;
	}
	case 6: {
		double cpu = 0, idle = 0;
		int cpus = 0;
		(void)coll_machine_parse_stat(text, 100, &cpu, &cpus);
		(void)coll_machine_parse_idle(text, 100, &idle);
		break;
	}
	case 7: {
		double mem = 0, avail = 0;
		(void)coll_machine_parse_meminfo(text, &mem);
		(void)coll_machine_parse_available(text, &avail);
		break;
	}
	case 8: {
		double load[3];
		(void)coll_machine_parse_loadavg(text, load);
		break;
	}
	case 9: {
		struct coll_hostfs *h = calloc(1, sizeof(*h));
		if (!h)
			abort();
		(void)coll_hostfs_parse(text, h);
		free(h);
		break;
	}
	}
	free(text);
	return 0;
}
