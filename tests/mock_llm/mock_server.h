/* mock_server.h - the mock LLM's HTTP server: OpenAI, Azure OpenAI,
 * Anthropic and Gemini endpoints, fault injection and counters, on
 * libmicrohttpd with one thread per connection (so stream callbacks may sleep).
 * Create and destroy from one thread; the server's own threads serve requests
 * in between. */
#ifndef MOCK_SERVER_H
#define MOCK_SERVER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mock_server mock_server;

typedef struct mock_server_opts {
    const char *host;    /* address or host name to bind */
    unsigned    port;    /* 0 picks a free port; see mock_server_port */
    const char *api_key; /* NULL: model endpoints need no key */
    bool        verbose; /* one stderr line per request */
} mock_server_opts;

/* mock_server_create binds, listens and is serving when it returns true.
 * On false, err holds a message and *out is untouched. Borrows opts until
 * return. Owns: *out, freed with mock_server_destroy. */
bool mock_server_create(mock_server **out, const mock_server_opts *opts,
                        char *err, size_t errsz);

/* mock_server_port returns the bound port (useful after port 0). */
unsigned mock_server_port(const mock_server *srv);

/* mock_server_destroy wakes requests that are sleeping on a delay, closes
 * every connection, joins the server's threads and frees everything.
 * NULL is a no-op. */
void mock_server_destroy(mock_server *srv);

#endif
