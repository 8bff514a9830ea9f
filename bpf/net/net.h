/* Maps shared by net.bpf.c and scry-net's collectors. */
#ifndef SCRY_NET_H
#define SCRY_NET_H

#include "scry_hist.h"

enum net_direction {
	NET_DIR_CLIENT = 0, /* this side connected: peer is the remote address and port */
	NET_DIR_SERVER = 1, /* this side accepted: port is the local listen port, no address */
};

enum net_fail_reason {
	NET_FAIL_REFUSED,   /* ECONNREFUSED: a reset answered the SYN */
	NET_FAIL_TIMED_OUT, /* ETIMEDOUT: no answer to the SYNs */
	NET_FAIL_RESET,     /* ECONNRESET: reset during the handshake */
	NET_FAIL_OTHER,     /* closed before established for another reason (abort, unreachable) */
	NET_FAIL_NR,
};

/* One series: workload, direction and peer. */
struct net_conn_key {
	__u64 cgroup_id;
	__u8 addr[16]; /* client: remote address (IPv4 in the first 4 bytes); server: zero */
	__u16 port;    /* client: remote port; server: local listen port; host order */
	__u8 family;   /* AF_INET or AF_INET6 */
	__u8 direction;
	__u32 pad;
};

/* What every connection adds to its series at establishment and close, counted per CPU (conn_counts), so
 * that the CPUs handling one series' connections do not all write the same lines. Only the
 * inet_sock_set_state program writes them, and the kernel never runs a program nested in itself on a CPU,
 * so the adds are plain. */
struct net_conn_counts {
	__u64 opened;
	__u64 closed; /* of the opened ones */
	__u64 bytes_sent; /* data acknowledged by the peer; added when the connection closes */
	__u64 bytes_received;
	__u64 segs_sent;
	__u64 segs_received;
};

/* The rest of a series' values, shared by the CPUs (atomic adds). */
struct net_conn_stats {
	__u64 failed[NET_FAIL_NR];
	__u64 retrans_segs; /* data segments, and for the server side the listener's SYN-ACKs too */
	__u64 syn_retrans;  /* client: SYNs retransmitted; server: SYN-ACKs retransmitted */
	__u64 resets_sent;
	__u64 resets_received;
	struct scry_hist connect;   /* client: SYN sent to established */
	struct scry_hist handshake; /* server: SYN-ACK sent to the handshake's final ACK */
	struct scry_hist rtt;       /* smoothed RTT: at establishment, then sampled received segments */
	/* sampled with the RTT, on the window layout (scry_hist.h) */
	struct scry_hist cwnd;        /* congestion window, segments */
	struct scry_hist snd_wnd;     /* the peer's receive window: bytes it lets this side send */
	struct scry_hist rcv_wnd;     /* this side's advertised receive window, bytes */
};

/* A series' values where the programs keep them: an array indexed by the series' number, each entry
 * with the key of the series it holds now (all zero while free). */
struct net_series {
	struct net_conn_key key;
	struct net_conn_stats stats;
};

/* Series the programs hold at once (the default; user space sizes the maps from --bpf.series), and the
 * entries of the direct-mapped array that leads a connection's first event from its key to its series. */
#define NET_SERIES 4096
#define NET_SERIES_HINTS 4096

struct net_series_hint {
	struct net_conn_key key;
	__u32 series;
	__u32 pad;
};

/* A socket being tracked (connections seen from their start). */
struct net_sock {
	struct net_conn_key key;
	__u64 start_ns; /* client: when the SYN was sent */
	__u32 retrans;  /* the socket's total_retrans as last counted */
	__u32 series;   /* where key's values were last found (0: not looked up yet) */
	__u8 established;
	__u8 pad[7];
};

/* The tracked sockets' table (net.bpf.c): buckets of one cache line, NET_SOCK_WAYS slots each tagged with
 * its socket's address (0: free), and how many of the bucket's sockets found it full and went to the
 * spill hash. User space sizes the table (a power of two of buckets); these are the defaults. */
#define NET_SOCK_WAYS 7
#define NET_SOCK_BUCKETS 16384
#define NET_SOCK_SPILL 8192

struct net_sock_tags {
	__u64 sk[NET_SOCK_WAYS];
	__u64 spilled;
};

struct net_listener_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
};

struct net_listener {
	__u32 tgid;
	__u8 observed;
	__u8 pad[3];
};

struct net_drop_key {
	__u64 cgroup_id; /* 0: no socket, or one not observed */
	__u32 reason;    /* enum skb_drop_reason */
	__u16 protocol;  /* IPPROTO_* of the socket; 0 without one */
	__u16 pad;
};

/* One key's drops on one CPU, in the direct-mapped array in front of the drops hash (drop_slots): a key
 * whose slot holds another key is counted in the hash. A slot keeps its key for good (user space never
 * clears it: the count would race with the program's adds). */
struct net_drop_slot {
	struct net_drop_key key; /* reason 0 while free: drops have reasons above 1 */
	__u64 count;
};

#define NET_DROP_SLOTS 64

/* What the socket iterator (iter/task_file) reports of one socket found in a process's files. The same
 * socket seen through several descriptors or processes has the same inode. */
enum net_socket_kind {
	NET_SOCKET_LISTENER = 1,
	NET_SOCKET_CONN = 2, /* a tracked connection, established */
};

struct net_socket_record {
	__u64 inode;
	__u8 kind;
	__u8 pad[7];
	/* listener */
	__u64 cgroup_id;
	__u64 drops;     /* sk_drops: SYNs and handshake completions the listener dropped (full queues...) */
	__u32 queue_len; /* sk_ack_backlog: connections waiting for accept() */
	__u32 queue_max; /* sk_max_ack_backlog: the listen() backlog as the kernel capped it */
	__u16 port;
	__u16 pad2[3];
	/* tracked connection: its series, and its transfer so far (as counted at close) */
	struct net_conn_key key;
	__u64 bytes_sent;
	__u64 bytes_received;
	__u64 segs_sent;
	__u64 segs_received;
};

enum net_lost_reason {
	NET_LOST_SOCKS_FULL,
	NET_LOST_CONNS_FULL,
	NET_LOST_LISTENERS_FULL,
	NET_LOST_DROPS_FULL,
	NET_LOST_NR,
};

#endif /* SCRY_NET_H */
