// probe [-v] [-f FUNC] [-r MODE,MODE...]
// Loads and attaches each program of probe.bpf.c on its own, triggers it (nanosleep, which also
// context-switches) and prints one line per attach mode:  "<mode> ok hits=N" or "<mode> FAIL <stage>: <error>".
// Exit 0 unless a mode named with -r (or "all") did not work; 2 on bad usage.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "probe.skel.h"

enum mode { TP_BTF, RAW_TP, TRACEPOINT, FENTRY, KPROBE, NMODES };
static const char *mode_names[NMODES] = {"tp_btf", "raw_tp", "tracepoint", "fentry", "kprobe"};

static int verbose;
static char last_msg[400];

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	/* keep the first warning after a reset: it names the cause, later ones only the consequence */
	if (level != LIBBPF_DEBUG && !last_msg[0]) {
		char buf[sizeof(last_msg)];
		vsnprintf(buf, sizeof(buf), fmt, ap2);
		buf[strcspn(buf, "\n")] = 0;
		snprintf(last_msg, sizeof(last_msg), "%s", strncmp(buf, "libbpf: ", 8) ? buf : buf + 8);
	}
	va_end(ap2);
	if (verbose)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static struct bpf_program *prog_of(struct probe_bpf *s, int m)
{
	switch (m) {
	case TP_BTF: return s->progs.on_tp_btf;
	case RAW_TP: return s->progs.on_raw_tp;
	case TRACEPOINT: return s->progs.on_tracepoint;
	case FENTRY: return s->progs.on_fentry;
	default: return s->progs.on_kprobe;
	}
}

static int try_mode(int m, const char *func, char *why, size_t whylen, unsigned long long *hits)
{
	struct probe_bpf *s;
	struct bpf_link *link = NULL;
	int err = 0;

	last_msg[0] = 0;
	s = probe_bpf__open();
	if (!s) {
		snprintf(why, whylen, "open: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < NMODES; i++)
		bpf_program__set_autoload(prog_of(s, i), i == m);
	s->rodata->target_tgid = getpid();
	if (m == FENTRY && (err = bpf_program__set_attach_target(s->progs.on_fentry, 0, func))) {
		snprintf(why, whylen, "target %s: %s", func, strerror(-err));
		goto out;
	}
	err = probe_bpf__load(s);
	if (err) {
		snprintf(why, whylen, "load: %s%s%s", strerror(-err), last_msg[0] ? " | libbpf: " : "", last_msg);
		goto out;
	}
	if (m == KPROBE)
		link = bpf_program__attach_kprobe(s->progs.on_kprobe, false, func);
	else
		link = bpf_program__attach(prog_of(s, m));
	if (!link) {
		err = -errno;
		snprintf(why, whylen, "attach: %s%s%s", strerror(errno), last_msg[0] ? " | libbpf: " : "", last_msg);
		goto out;
	}
	for (int i = 0; i < 20; i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	*hits = __atomic_load_n(&s->bss->hits[m], __ATOMIC_RELAXED);
	if (*hits == 0) {
		snprintf(why, whylen, "attached but never fired");
		err = -1;
	}
out:
	bpf_link__destroy(link);
	probe_bpf__destroy(s);
	return err;
}

int main(int argc, char **argv)
{
	const char *func = "do_nanosleep";
	int require[NMODES] = {0};
	int opt, failed = 0;

	while ((opt = getopt(argc, argv, "vf:r:h")) != -1) {
		switch (opt) {
		case 'v': verbose = 1; break;
		case 'f': func = optarg; break;
		case 'r': {
			char *list = strdup(optarg), *save = NULL;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				int found = 0;
				for (int i = 0; i < NMODES; i++)
					if (!strcmp(t, "all") || !strcmp(t, mode_names[i]))
						require[i] = found = 1;
				if (!found) {
					fprintf(stderr, "probe: unknown mode %s\n", t);
					return 2;
				}
			}
			free(list);
			break;
		}
		default:
			fprintf(stderr, "usage: %s [-v] [-f FUNC] [-r MODE,...|all]\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	libbpf_set_print(print_fn);
	struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
	setrlimit(RLIMIT_MEMLOCK, &rl);

	for (int m = 0; m < NMODES; m++) {
		char why[700] = "";
		unsigned long long hits = 0;
		const char *hook = m <= TRACEPOINT ? "sched_switch" : func;
		if (try_mode(m, func, why, sizeof(why), &hits) == 0)
			printf("probe %-10s %-14s ok hits=%llu\n", mode_names[m], hook, hits);
		else {
			printf("probe %-10s %-14s FAIL %s\n", mode_names[m], hook, why);
			failed |= require[m];
		}
		fflush(stdout);
	}
	return failed ? 1 : 0;
}
