/* fastmock: a compiled OpenAI-compatible streaming mock for load-generator capacity benchmarks.
 *
 * Python's mock (loadgen/mock_server.py) tops out near the chunk rates a load generator must now
 * sustain, so it would measure itself, not the client. This one is a single-threaded epoll loop:
 * HTTP/1.1 keep-alive, chunked transfer encoding, one SSE chunk per token on absolute deadlines
 * (first after --ttft-us, then every --itl-us; a timerfd wakes the loop at the earliest deadline, so
 * every chunk is its own write), then a finish chunk, a usage chunk and [DONE] - the chunks OpenAI
 * and vLLM send, byte for byte in shape. It answers GET /health and GET /v1/models, and POST
 * /v1/chat/completions and /v1/completions with `max_tokens` tokens (streaming only).
 *
 *   cc -O2 -o fastmock fastmock.c && ./fastmock --port 0 --ttft-us 5000 --itl-us 1000
 *   (prints "MOCK_URL http://127.0.0.1:PORT" once listening)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAXCONN 65536
#define INBUF 65536

typedef struct {
  int fd, active, chat, n_tokens, sent, stage; /* stage: 0 reading, 1 streaming */
  int64_t next_ns, itl_ns;
  char in[INBUF];
  size_t in_len;
  char *out;
  size_t out_len, out_cap;
} Conn;

static Conn *conns[MAXCONN];
static int64_t ttft_ns = 5000000, itl_ns = 1000000;
static int epfd, tfd;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void out_append(Conn *c, const char *data, size_t n) {
  if (c->out_len + n > c->out_cap) {
    c->out_cap = (c->out_len + n) * 2 + 4096;
    c->out = realloc(c->out, c->out_cap);
  }
  memcpy(c->out + c->out_len, data, n);
  c->out_len += n;
}

static void close_conn(Conn *c) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  conns[c->fd] = NULL;
  free(c->out);
  free(c);
}

static int flush(Conn *c) { /* 0 ok (maybe partial, EPOLLOUT armed), -1 closed */
  while (c->out_len) {
    ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      close_conn(c);
      return -1;
    }
    memmove(c->out, c->out + w, c->out_len - (size_t)w);
    c->out_len -= (size_t)w;
  }
  struct epoll_event ev = {.events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.fd = c->fd};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
  return 0;
}

static void chunked(Conn *c, const char *payload, size_t n) { /* one HTTP chunk holding an SSE event */
  char head[32];
  int h = snprintf(head, sizeof head, "%zx\r\n", n);
  out_append(c, head, (size_t)h);
  out_append(c, payload, n);
  out_append(c, "\r\n", 2);
}

static void sse_choice(Conn *c, const char *choice) { /* one chunk of the stream: envelope + choice */
  char buf[512];
  int n = snprintf(buf, sizeof buf,
                   "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":1700000000,\"model\":\"mock-model\","
                   "\"choices\":[{\"index\":0,%s,\"logprobs\":null}]}\n\n",
                   c->chat ? "chatcmpl-mock" : "cmpl-mock", c->chat ? "chat.completion.chunk" : "text_completion",
                   choice);
  chunked(c, buf, (size_t)n);
}

static void sse_token(Conn *c) {
  sse_choice(c, c->chat ? "\"delta\":{\"content\":\" tok\"},\"finish_reason\":null"
                        : "\"text\":\" tok\",\"finish_reason\":null");
}

static void sse_end(Conn *c) {
  char buf[512];
  int n;
  sse_choice(c, c->chat ? "\"delta\":{},\"finish_reason\":\"length\"" : "\"text\":\"\",\"finish_reason\":\"length\"");
  n = snprintf(buf, sizeof buf,
               "data: {\"id\":\"mock\",\"object\":\"%s\",\"created\":1700000000,\"model\":\"mock-model\",\"choices\":[],"
               "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n",
               c->chat ? "chat.completion.chunk" : "text_completion", c->n_tokens, c->n_tokens + 1);
  chunked(c, buf, (size_t)n);
  chunked(c, "data: [DONE]\n\n", 14);
  out_append(c, "0\r\n\r\n", 5);
}

static void respond_plain(Conn *c, const char *status, const char *body) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf,
                   "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", status,
                   strlen(body), body);
  out_append(c, buf, (size_t)n);
}

static int max_fd = 0;

static void arm_timer_fast(void) { /* scan only up to the highest fd in use */
  int64_t earliest = INT64_MAX;
  for (int fd = 0; fd <= max_fd; fd++)
    if (conns[fd] && conns[fd]->stage == 1 && conns[fd]->next_ns < earliest) earliest = conns[fd]->next_ns;
  struct itimerspec its = {0};
  if (earliest != INT64_MAX) {
    its.it_value.tv_sec = earliest / 1000000000LL;
    its.it_value.tv_nsec = earliest % 1000000000LL;
    if (!its.it_value.tv_sec && !its.it_value.tv_nsec) its.it_value.tv_nsec = 1;
  }
  timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void handle_request(Conn *c) {
  for (;;) {
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end || c->stage != 0) return;
    size_t head_len = (size_t)(end - c->in) + 4;
    size_t body_len = 0;
    char *cl = memmem(c->in, head_len, "ontent-Length:", 14);
    if (!cl) cl = memmem(c->in, head_len, "ontent-length:", 14);
    if (cl) body_len = (size_t)strtoul(cl + 14, NULL, 10);
    if (c->in_len < head_len + body_len) return;
    int is_get = !strncmp(c->in, "GET ", 4);
    if (is_get && !strncmp(c->in + 4, "/health", 7)) {
      respond_plain(c, "200 OK", "{\"status\":\"ok\"}");
    } else if (is_get && !strncmp(c->in + 4, "/v1/models", 10)) {
      respond_plain(c, "200 OK",
                    "{\"object\":\"list\",\"data\":[{\"id\":\"mock-model\",\"object\":\"model\",\"owned_by\":\"fastmock\"}]}");
    } else if (!strncmp(c->in, "POST /v1/chat/completions", 25) || !strncmp(c->in, "POST /v1/completions", 20)) {
      c->chat = !strncmp(c->in, "POST /v1/chat/completions", 25);
      char *body = c->in + head_len;
      char saved = body[body_len]; /* in_len < INBUF: there is room for the terminator */
      body[body_len] = 0;
      char *mt = strstr(body, "\"max_tokens\"");
      if (!mt) mt = strstr(body, "\"max_completion_tokens\"");
      body[body_len] = saved;
      int n = 16;
      if (mt) {
        char *colon = strchr(mt, ':');
        if (colon) n = atoi(colon + 1);
      }
      c->n_tokens = n > 0 ? n : 1;
      c->sent = 0;
      c->stage = 1;
      c->next_ns = now_ns() + ttft_ns;
      c->itl_ns = itl_ns;
      const char *head =
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
          "Transfer-Encoding: chunked\r\n\r\n";
      out_append(c, head, strlen(head));
    } else {
      respond_plain(c, "404 Not Found", "{\"error\":{\"message\":\"not found\",\"type\":\"not_found_error\"}}");
    }
    memmove(c->in, c->in + head_len + body_len, c->in_len - head_len - body_len);
    c->in_len -= head_len + body_len;
    if (flush(c) < 0) return;
  }
}

static void tick(void) {
  int64_t now = now_ns();
  for (int fd = 0; fd <= max_fd; fd++) {
    Conn *c = conns[fd];
    if (!c || c->stage != 1) continue;
    int wrote = 0;
    while (c->stage == 1 && c->next_ns <= now) {
      sse_token(c);
      c->sent++;
      c->next_ns += c->itl_ns;
      wrote = 1;
      if (c->sent >= c->n_tokens) {
        sse_end(c);
        c->stage = 0;
      }
    }
    if (wrote && flush(c) == 0 && c->stage == 0 && conns[fd]) handle_request(c); /* a pipelined request */
  }
}

int main(int argc, char **argv) {
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--ttft-us")) ttft_ns = atoll(argv[i + 1]) * 1000LL;
    else if (!strcmp(argv[i], "--itl-us")) itl_ns = atoll(argv[i + 1]) * 1000LL;
    else {
      fprintf(stderr, "fastmock: unknown option %s (use --port N --ttft-us N --itl-us N)\n", argv[i]);
      return 2;
    }
  }
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (bind(ls, (struct sockaddr *)&addr, sizeof addr) || listen(ls, 4096)) {
    perror("fastmock: bind/listen");
    return 1;
  }
  socklen_t alen = sizeof addr;
  getsockname(ls, (struct sockaddr *)&addr, &alen);
  printf("MOCK_URL http://127.0.0.1:%d\n", ntohs(addr.sin_port));
  fflush(stdout);
  epfd = epoll_create1(0);
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &ev);
  ev.data.fd = tfd;
  epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(epfd, events, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == ls) {
        int cfd;
        while ((cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (cfd >= MAXCONN) {
            close(cfd);
            continue;
          }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          Conn *c = calloc(1, sizeof(Conn));
          c->fd = cfd;
          conns[cfd] = c;
          if (cfd > max_fd) max_fd = cfd;
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
          epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &cev);
        }
      } else if (fd == tfd) {
        uint64_t expirations;
        ssize_t r = read(tfd, &expirations, sizeof expirations);
        (void)r;
        tick();
      } else if (conns[fd]) {
        Conn *c = conns[fd];
        if (events[i].events & EPOLLOUT) {
          if (flush(c) < 0) continue;
        }
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          ssize_t r = recv(fd, c->in + c->in_len, INBUF - c->in_len - 1, 0);
          if (r <= 0) {
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
            close_conn(c);
            continue;
          }
          c->in_len += (size_t)r;
          handle_request(c);
        }
      }
    }
    tick();
    arm_timer_fast();
  }
}
