/* Workloads with known answers for test_mem-sli.py. No stdio and no malloc, so that the program's
 * own page faults, mappings and heap moves are only the ones it is asked for.
 *   touch N       map N pages (untouched), "ready", wait for a line, write one byte per page, "done", wait
 *   vm FILE       "ready", wait, then known mmap/munmap/brk calls, "done", wait
 *   hog MIB       touch MIB MiB in 1 MiB steps, then "survived" (an OOM kill stops it before)
 *   read FILE     map FILE (its pages dropped from the page cache, no readahead), "ready", wait, read one
 *                 byte per page (a major fault each), "done", wait
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

static void wait_line(void)
{
	char c;

	while (read(0, &c, 1) == 1 && c != '\n')
		;
}

static void fail(const char *s)
{
	say(s);
	_exit(1);
}

int main(int argc, char **argv)
{
	long page = sysconf(_SC_PAGESIZE);

	if (argc == 3 && !strcmp(argv[1], "touch")) {
		long n = atol(argv[2]);
		char *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			fail("mmap failed\n");
		madvise(p, n * page, MADV_NOHUGEPAGE); /* one fault per page, not per huge page */
		say("ready\n");
		wait_line();
		for (long i = 0; i < n; i++)
			p[i * page] = 1;
		say("done\n");
		wait_line();
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "vm")) {
		int fd = open(argv[2], O_RDONLY);
		char *a, *s, *f, *old;

		if (fd < 0)
			fail("open failed\n");
		say("ready\n");
		wait_line();
		/* anonymous: 3 MiB + 5 pages mapped, its first 1 MiB unmapped */
		a = mmap(NULL, (3 << 20) + 5 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (a == MAP_FAILED || munmap(a, 1 << 20))
			fail("anon failed\n");
		/* shared: 2 MiB + 3 pages, all unmapped again */
		s = mmap(NULL, (2 << 20) + 3 * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (s == MAP_FAILED || munmap(s, (2 << 20) + 3 * page))
			fail("shared failed\n");
		/* private file mapping of 16 pages; a failing mmap (bad fd) that must not count */
		f = mmap(NULL, 16 * page, PROT_READ, MAP_PRIVATE, fd, 0);
		if (f == MAP_FAILED)
			fail("file failed\n");
		if (mmap(NULL, 8 * page, PROT_READ, MAP_PRIVATE, 1000, 0) != MAP_FAILED)
			fail("bad fd mapped\n");
		/* heap: up 1 MiB + 7 pages, down 3 pages */
		old = sbrk(0);
		if (sbrk((1 << 20) + 7 * page) != old || sbrk(-3 * page) == (void *)-1)
			fail("brk failed\n");
		say("done\n");
		wait_line();
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "hog")) {
		long mib = atol(argv[2]);

		for (long i = 0; i < mib; i++) {
			char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p == MAP_FAILED)
				fail("mmap failed\n");
			for (long off = 0; off < (1 << 20); off += page)
				p[off] = 1;
		}
		say("survived\n");
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "read")) {
		int fd = open(argv[2], O_RDONLY);
		off_t size = fd < 0 ? 0 : lseek(fd, 0, SEEK_END);
		volatile char *p;
		char sum = 0;

		if (size <= 0)
			fail("open failed\n");
		p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			fail("mmap failed\n");
		madvise((void *)p, size, MADV_RANDOM); /* no readahead: one read per fault */
		if (posix_fadvise(fd, 0, size, POSIX_FADV_DONTNEED))
			fail("fadvise failed\n");
		say("ready\n");
		wait_line();
		for (off_t off = 0; off < size; off += page)
			sum += p[off];
		say(sum == 0 ? "done\n" : "nonzero\n");
		wait_line();
		return 0;
	}
	fail("usage: touch N | vm FILE | hog MIB | read FILE\n");
	return 1;
}
