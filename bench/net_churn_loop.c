/* Connection churn with nothing else: one thread connects to its own loopback listener, accepts, sends
 * a byte each way, closes the server side, then the client side with a reset (SO_LINGER 0: no
 * TIME_WAIT), `count` times. Both ends run on the calling CPU, so the time is the kernel's work per
 * connection, both ends, and whatever the BPF programs add to it. Prints the seconds taken.
 *
 *   net_churn_loop COUNT PORT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s COUNT PORT\n", argv[0]);
		return 2;
	}
	int count = atoi(argv[1]);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2])),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct linger reset = {1, 0};
	struct timespec t0, t1;
	char byte = 'x';

	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) || listen(listener, 128)) {
		perror("listen");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < count; i++) {
		int client = socket(AF_INET, SOCK_STREAM, 0), server;

		if (connect(client, (struct sockaddr *)&addr, sizeof(addr)) || (server = accept(listener, NULL, NULL)) < 0 ||
		    write(client, &byte, 1) != 1 || read(server, &byte, 1) != 1 || write(server, &byte, 1) != 1 ||
		    read(client, &byte, 1) != 1) {
			perror("churn");
			return 1;
		}
		close(server);
		setsockopt(client, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		close(client);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.6f\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
