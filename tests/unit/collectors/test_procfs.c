/*
 * test_procfs.c - the /proc readers and parsers (collectors/procfs.c):
 * golden and malformed stat lines, net/dev and net/{tcp,udp}[6] files,
 * address formatting, the pids of a cgroup subtree, one process's files in
 * the fixture tree tests/fixtures/proc/host, and the same readers on real
 * processes of this host: this one, a socket it listens on, a zombie and a
 * reaped child.
 */
#include "collectors/collector.h"
#include "../test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROOT FIXTURES "/proc/host"
#define CG_A "/docker/a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define CG_E "/docker/d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
#define CG_POD "/kubepods/pod6f1c8a2e-4b3d-4e5f-9a7b-1c2d3e4f5a6b"

static struct cg_layout layout;

static bool use_root(const char *root)
{
	return hostroot_set(root) == 0 && cg_layout_detect(&layout) == 0;
}

/* ---- stat ------------------------------------------------------------------ */

static void test_parse_stat(void)
{
	struct proc_stat st;
	const char *line = "4242 (my (odd) cmd) ) R 17 1 1 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 "
			   "7 0 98765 4000000 321 18446744073709551615 0 0\n";
	CHECK_EQ_INT(proc_parse_stat(line, &st), 0);
	CHECK_EQ_INT(st.pid, 4242);
	CHECK_STR(st.comm, "my (odd) cmd) ");
	CHECK_EQ_INT(st.state, 'R');
	CHECK_EQ_INT(st.ppid, 17);
	CHECK_EQ_INT(st.utime_ticks, 1234);
	CHECK_EQ_INT(st.stime_ticks, 567);
	CHECK_EQ_INT(st.threads, 7);
	CHECK_EQ_INT(st.start_ticks, 98765);
	CHECK_EQ_INT(st.rss_pages, 321);

	/* Malformed: each is refused, none crashes. */
	CHECK_EQ_INT(proc_parse_stat("", &st), -EINVAL);
	CHECK_EQ_INT(proc_parse_stat("garbage", &st), -EINVAL);
	CHECK_EQ_INT(proc_parse_stat("12 (no close paren S 1 2", &st), -EINVAL);
	CHECK_EQ_INT(proc_parse_stat("12 (x) S 1 1 1 0", &st), -EINVAL);      /* truncated */
	CHECK_EQ_INT(proc_parse_stat("12 (x) S 1 1 1 0 -1 4194560 100 0 0 0 x 5", &st), -EINVAL);
	CHECK_EQ_INT(proc_parse_stat("12 (x)", &st), -EINVAL);
}

/* ---- net/dev ----------------------------------------------------------------- */

static const char netdev[] =
	"Inter-|   Receive                                                |  Transmit\n"
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	"    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n"
	"  eth0: 18446744073709551615 10 1 2 0 0 0 0 5000 20 3 4 0 0 0 0\n";

static void test_parse_netdev(void)
{
	struct proc_netdev d[4];
	size_t total = 0;
	CHECK_EQ_INT(proc_parse_netdev(netdev, d, 4, &total), 2);
	CHECK_EQ_INT(total, 2);
	CHECK_STR(d[0].name, "lo");
	CHECK_STR(d[1].name, "eth0");
	CHECK(d[1].rx_bytes == UINT64_MAX);
	CHECK_EQ_INT(d[1].rx_packets, 10);
	CHECK_EQ_INT(d[1].rx_errors, 1);
	CHECK_EQ_INT(d[1].rx_dropped, 2);
	CHECK_EQ_INT(d[1].tx_bytes, 5000);
	CHECK_EQ_INT(d[1].tx_packets, 20);
	CHECK_EQ_INT(d[1].tx_errors, 3);
	CHECK_EQ_INT(d[1].tx_dropped, 4);

	/* The cap keeps the first ones and counts the rest. */
	CHECK_EQ_INT(proc_parse_netdev(netdev, d, 1, &total), 1);
	CHECK_EQ_INT(total, 2);
	/* Only the headers: no interfaces. */
	CHECK_EQ_INT(proc_parse_netdev("Inter-| a | b\n face |x|y\n", d, 4, &total), 0);

	CHECK_EQ_INT(proc_parse_netdev("", d, 4, NULL), -EINVAL);
	CHECK_EQ_INT(proc_parse_netdev("garbage\nmore garbage\n", d, 4, NULL), -EINVAL);
	CHECK_EQ_INT(proc_parse_netdev(NULL, d, 4, NULL), -EINVAL);
	/* A line cut short (a read that stopped mid-file). */
	char cut[sizeof(netdev)];
	memcpy(cut, netdev, sizeof(netdev));
	cut[sizeof(netdev) - 20] = '\0';
	CHECK_EQ_INT(proc_parse_netdev(cut, d, 4, NULL), -EINVAL);

	CHECK(proc_netdev_skipped("lo"));
	CHECK(proc_netdev_skipped("veth1234"));
	CHECK(proc_netdev_skipped("docker0"));
	CHECK(!proc_netdev_skipped("eth0"));
	CHECK(!proc_netdev_skipped("lo0"));
}

/* ---- sockets ------------------------------------------------------------------ */

/* A fixture file's text; one of four rotating buffers. */
static char *slurp(const char *rel)
{
	static char text[4][16384];
	static int next;
	char path[PATH_MAX], *t = text[next++ % 4];
	snprintf(path, sizeof(path), "%s/%s", ROOT, rel);
	return read_file(path, t, sizeof(text[0])) >= 0 ? t : NULL;
}

static void test_parse_sockets(void)
{
	struct proc_socket s[8];
	size_t total;
	char addr[64];
	const char *tcp = slurp("proc/100/net/tcp");
	CHECK(tcp != NULL);
	if (!tcp)
		return;
	CHECK_EQ_INT(proc_parse_sockets(tcp, PROC_TCP, PROC_AF_INET, true, s, 8, &total), 2);
	CHECK_EQ_INT(s[0].port, 7777);
	CHECK_EQ_INT(s[0].inode, 1001);
	CHECK_EQ_INT(s[0].state, PROC_TCP_LISTEN);
	proc_format_addr(&s[0], addr, sizeof(addr));
	CHECK_STR(addr, "0.0.0.0");
	CHECK_EQ_INT(s[1].port, 80);
	CHECK_EQ_INT(s[1].uid, 1000);
	proc_format_addr(&s[1], addr, sizeof(addr));
	CHECK_STR(addr, "127.0.0.1");
	/* Every socket, the established one included. */
	CHECK_EQ_INT(proc_parse_sockets(tcp, PROC_TCP, PROC_AF_INET, false, s, 8, &total), 3);
	proc_format_addr(&s[2], addr, sizeof(addr));
	CHECK_STR(addr, "10.0.0.2");
	CHECK_EQ_INT(s[2].port, 40000);

	const char *tcp6 = slurp("proc/100/net/tcp6");
	CHECK_EQ_INT(proc_parse_sockets(tcp6, PROC_TCP, PROC_AF_INET6, true, s, 8, &total), 3);
	proc_format_addr(&s[0], addr, sizeof(addr));
	CHECK_STR(addr, "::");
	CHECK_EQ_INT(s[0].port, 8080);
	proc_format_addr(&s[1], addr, sizeof(addr));
	CHECK_STR(addr, "::1");
	CHECK_EQ_INT(s[1].port, 22);
	proc_format_addr(&s[2], addr, sizeof(addr));
	CHECK_STR(addr, "::ffff:10.0.0.1");

	/* UDP: the unconnected socket listens, the connected one does not. */
	const char *udp = slurp("proc/100/net/udp");
	CHECK_EQ_INT(proc_parse_sockets(udp, PROC_UDP, PROC_AF_INET, true, s, 8, &total), 1);
	CHECK_EQ_INT(s[0].port, 7778);
	CHECK_EQ_INT(s[0].inode, 1007);
	CHECK_EQ_INT(proc_parse_sockets(slurp("proc/100/net/udp6"), PROC_UDP, PROC_AF_INET6, true, s,
					8, &total), 0);

	/* The cap. */
	CHECK_EQ_INT(proc_parse_sockets(tcp, PROC_TCP, PROC_AF_INET, false, s, 1, &total), 1);
	CHECK_EQ_INT(total, 3);

	/* Malformed. */
	CHECK_EQ_INT(proc_parse_sockets("", PROC_TCP, PROC_AF_INET, true, s, 8, NULL), -EINVAL);
	CHECK_EQ_INT(proc_parse_sockets("no header\n", PROC_TCP, PROC_AF_INET, true, s, 8, NULL), -EINVAL);
	CHECK_EQ_INT(proc_parse_sockets("  sl  local_address rem_address st\n   0: 0000ZZ00:1E61 "
					"00000000:0000 0A\n", PROC_TCP, PROC_AF_INET, true, s, 8, NULL),
		     -EINVAL);
	CHECK_EQ_INT(proc_parse_sockets("  sl  local_address rem_address st\n   0: 00000000:1E61\n",
					PROC_TCP, PROC_AF_INET, true, s, 8, NULL), -EINVAL);
	/* An IPv4 file read as IPv6 is malformed too. */
	CHECK_EQ_INT(proc_parse_sockets(tcp, PROC_TCP, PROC_AF_INET6, true, s, 8, NULL), -EINVAL);
}

static void test_format_addr(void)
{
	struct proc_socket s = { .family = PROC_AF_INET6 };
	char out[64];
	struct in6_addr a;
	static const char *const cases[] = { "2001:db8::1", "1:0:0:1::1", "::", "fe80::", "1:2:3:4:5:6:7:8",
					     "1:0:0:4::8" };
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		CHECK(inet_pton(AF_INET6, cases[i], &a) == 1);
		memcpy(s.addr, &a, 16);
		proc_format_addr(&s, out, sizeof(out));
		CHECK_STR(out, cases[i]);
	}
}

/* ---- the fixture tree ------------------------------------------------------------ */

static void test_cgroup_pids(void)
{
	pid_t pids[8];
	bool truncated;
	if (!use_root(ROOT)) {
		CHECK(!"fixture root");
		return;
	}
	/* "101 100 101": sorted, the repeat dropped. */
	CHECK_EQ_INT(proc_cgroup_pids(&layout, CG_A, pids, 8, &truncated), 2);
	CHECK_EQ_INT(pids[0], 100);
	CHECK_EQ_INT(pids[1], 101);
	CHECK(!truncated);
	/* A pod holds no process itself; its containers' cgroups below do. */
	CHECK_EQ_INT(proc_cgroup_pids(&layout, CG_POD, pids, 8, &truncated), 2);
	CHECK_EQ_INT(pids[0], 500);
	CHECK_EQ_INT(pids[1], 501);
	CHECK_EQ_INT(proc_cgroup_pids(&layout, CG_E, pids, 8, &truncated), 0);
	CHECK_EQ_INT(proc_cgroup_pids(&layout, "/docker/gone", pids, 8, &truncated), -ENOENT);
	/* The cap. */
	CHECK_EQ_INT(proc_cgroup_pids(&layout, CG_POD, pids, 1, &truncated), 1);
	CHECK(truncated);
}

static int n_inodes;
static uint64_t inodes[8];

static void on_socket(void *arg, pid_t pid, uint64_t inode)
{
	CHECK_EQ_INT(pid, 101);
	if (n_inodes < 8)
		inodes[n_inodes++] = inode;
}

static void test_process_files(void)
{
	struct proc_stat st;
	uint32_t uid = 0;
	char cmd[64];
	struct proc_fds f;
	struct proc_nsid a, b, h, host;
	if (!use_root(ROOT)) {
		CHECK(!"fixture root");
		return;
	}
	CHECK_EQ_INT(proc_read_stat(101, &st), 0);
	CHECK_STR(st.comm, "a) b");
	CHECK_EQ_INT(st.threads, 4);
	CHECK_EQ_INT(proc_read_uid(101, &uid), 0);
	CHECK_EQ_INT(uid, 1000);
	CHECK_EQ_INT(proc_read_cmdline(101, cmd, sizeof(cmd)), 7);
	CHECK_STR(cmd, "sh -c x");
	/* Cut to the buffer. */
	CHECK_EQ_INT(proc_read_cmdline(100, cmd, 5), 4);
	CHECK_STR(cmd, "nc -");

	n_inodes = 0;
	CHECK_EQ_INT(proc_scan_fds(101, 100, &f, on_socket, NULL), 0);
	CHECK_EQ_INT(f.fds, 5);
	CHECK_EQ_INT(f.sockets, 2);
	CHECK(!f.truncated);
	CHECK_EQ_INT(n_inodes, 2);
	CHECK((inodes[0] == 1002 && inodes[1] == 1003) || (inodes[0] == 1003 && inodes[1] == 1002));
	CHECK_EQ_INT(proc_scan_fds(101, 2, &f, NULL, NULL), 0);
	CHECK_EQ_INT(f.fds, 2);
	CHECK(f.truncated);

	/* Namespaces: 100 and 200 share one; 300 is in the host's. */
	CHECK_EQ_INT(proc_netns_id(100, &a), 0);
	CHECK_EQ_INT(proc_netns_id(200, &b), 0);
	CHECK_EQ_INT(proc_netns_id(300, &h), 0);
	CHECK_EQ_INT(proc_host_netns(&host), 0);
	CHECK(a.ino == b.ino && a.dev == b.dev);
	CHECK(h.ino == host.ino && a.ino != host.ino);

	/* A pid that is not there. */
	CHECK_EQ_INT(proc_read_stat(999, &st), -ENOENT);
	CHECK_EQ_INT(proc_read_uid(999, &uid), -ENOENT);
	CHECK_EQ_INT(proc_read_cmdline(999, cmd, sizeof(cmd)), -ENOENT);
	CHECK_EQ_INT(proc_scan_fds(999, 100, &f, NULL, NULL), -ENOENT);
	CHECK_EQ_INT(proc_netns_id(999, &a), -ENOENT);
	struct proc_socket s[4];
	CHECK_EQ_INT(proc_read_sockets(999, PROC_TCP, PROC_AF_INET, true, s, 4, NULL), -ENOENT);
	CHECK_EQ_INT(proc_read_sockets(100, PROC_TCP, PROC_AF_INET, true, s, 4, NULL), 2);
}

/* ---- real processes ------------------------------------------------------------------ */

static void test_real_processes(void)
{
	struct proc_stat st;
	struct proc_fds f;
	struct proc_nsid id;
	char cmd[256];
	CHECK_EQ_INT(hostroot_set("/"), 0);
	CHECK_EQ_INT(proc_read_stat(getpid(), &st), 0);
	CHECK_EQ_INT(st.pid, getpid());
	CHECK_EQ_INT(st.state, 'R');
	CHECK(proc_read_cmdline(getpid(), cmd, sizeof(cmd)) > 0);
	CHECK(strstr(cmd, "test_procfs") != NULL);

	/* A socket this test listens on is in its namespace's net/tcp with its
	 * inode, and among its descriptors. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	struct stat sst;
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && fstat(fd, &sst) == 0);
	struct proc_socket *socks = calloc(65536, sizeof(*socks));
	int n = proc_read_sockets(getpid(), PROC_TCP, PROC_AF_INET, true, socks, 65536, NULL);
	bool found = false;
	for (int i = 0; i < n; i++)
		found |= socks[i].inode == (uint64_t)sst.st_ino && socks[i].port == ntohs(sa.sin_port);
	CHECK(found);
	free(socks);
	CHECK_EQ_INT(proc_scan_fds(getpid(), 1 << 20, &f, NULL, NULL), 0);
	CHECK(f.sockets >= 1 && f.fds >= 4 && f.listed >= 4 && !f.truncated);
	/* Past the budget the count comes from procfs where it gives one
	 * (Linux 6.2+: the fd directory's size), else it is what was listed. */
	int64_t all = f.fds;
	CHECK_EQ_INT(proc_scan_fds(getpid(), 1, &f, NULL, NULL), 0);
	CHECK_EQ_INT(f.listed, 1);
	CHECK(f.truncated);
	CHECK(f.fds == 1 || f.fds >= all);
	close(fd);

	/* A zombie: its stat still reads (state Z), it has no command line,
	 * and nothing fails harder than "gone". */
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	for (int i = 0; i < 200; i++) {
		if (proc_read_stat(child, &st) == 0 && st.state == 'Z')
			break;
		usleep(10000);
	}
	CHECK_EQ_INT(st.state, 'Z');
	CHECK_EQ_INT(proc_read_cmdline(child, cmd, sizeof(cmd)), 0);
	int rc = proc_scan_fds(child, 100, &f, NULL, NULL);
	CHECK(rc == 0 || rc == -ENOENT || rc == -EACCES);
	CHECK(rc != 0 || f.fds == 0);
	/* Reaped: every reader says -ENOENT. */
	waitpid(child, NULL, 0);
	CHECK_EQ_INT(proc_read_stat(child, &st), -ENOENT);
	CHECK_EQ_INT(proc_read_cmdline(child, cmd, sizeof(cmd)), -ENOENT);
	CHECK_EQ_INT(proc_scan_fds(child, 100, &f, NULL, NULL), -ENOENT);
	CHECK_EQ_INT(proc_netns_id(child, &id), -ENOENT);
}

int main(void)
{
	RUN(test_parse_stat);
	RUN(test_parse_netdev);
	RUN(test_parse_sockets);
	RUN(test_format_addr);
	RUN(test_cgroup_pids);
	RUN(test_process_files);
	RUN(test_real_processes);
	TEST_END();
}
