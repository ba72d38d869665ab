/*
 * bench/drivers/http_hello.c - the baseline for bench/drivers/http.sh: a
 * raw libmicrohttpd server that answers every request with a fixed
 * 100-byte JSON body, in the same threading mode as `cqrs metrics` (one
 * thread per connection over poll), so that wrk measures the HTTP
 * library's own cost beside the gateway's.
 *
 *   http_hello PORT     (0: a free port); prints "listening on PORT", runs
 *                       until SIGINT or SIGTERM
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char body[] =
	"{\"order_id\":1,\"customer_id\":1,\"customer_name\":\"customer-1\",\"item_count\":1,\"status\":1}\n";

static enum MHD_Result hello(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			     const char *version, const char *up, size_t *up_size, void **con_cls)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls; (void)url; (void)method; (void)version; (void)up; (void)up_size;
	if (!*con_cls) { /* first call: headers only */
		*con_cls = c;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof sa;
	struct MHD_Daemon *d;
	sigset_t set;
	int fd, sig, one = 1;

	if (argc != 2)
		return 2;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		perror("http_hello");
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD, 0, NULL, NULL,
			     hello, NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 64u,
			     MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
	if (!d)
		return 1;
	printf("listening on %u\n", (unsigned)ntohs(sa.sin_port));
	fflush(stdout);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
