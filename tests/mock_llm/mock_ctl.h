/* mock_ctl.h - per-request fault and timing controls for the mock LLM.
 * Controls come from the "x-mock-control: k=v,k=v" header or from
 * "[[mock k=v k=v]]" directives inside message text. Pure functions over
 * caller-owned structs; thread-safe. */
#ifndef MOCK_CTL_H
#define MOCK_CTL_H

#include <stdbool.h>
#include <stddef.h>

typedef enum mock_ctl_key {
    MOCK_CTL_TTFT_MS,        /* delay before the first response byte */
    MOCK_CTL_CHUNK_DELAY_MS, /* delay before each later stream chunk */
    MOCK_CTL_CHUNKS,         /* words in the reply */
    MOCK_CTL_STATUS,         /* answer with this HTTP error status */
    MOCK_CTL_DROP_AFTER,     /* abort after this many content chunks */
    MOCK_CTL_ERROR_AFTER,    /* stream: in-stream error after N chunks */
    MOCK_CTL_CONTEXT,        /* context window: reject longer prompts */
    MOCK_CTL_CONTENT_FILTER, /* 1: the provider's content filter trips */
    MOCK_CTL_TOOL,           /* string: reply with a call to this tool */
    MOCK_CTL_ONLY,           /* string: faults apply only to this model */
    MOCK_CTL_TIMES,          /* faults apply to the first N such requests */
    MOCK_CTL_TAG,            /* string: what "times" counts by */
    MOCK_CTL_ECHO,           /* 1: reply with the last user message's text */
    MOCK_CTL_CORRUPT_AFTER,  /* stream: a damaged frame after N chunks */
    MOCK_CTL__COUNT
} mock_ctl_key;

/* Tool names as OpenAI allows them: [A-Za-z0-9_-]{1,64}. */
#define MOCK_CTL_NAME_MAX 64

typedef struct mock_ctl {
    long val[MOCK_CTL__COUNT]; /* a string key's val is its length */
    bool set[MOCK_CTL__COUNT];
    char tool[MOCK_CTL_NAME_MAX + 1]; /* MOCK_CTL_TOOL's value */
    char only[MOCK_CTL_NAME_MAX + 1]; /* MOCK_CTL_ONLY's value */
    char tag[MOCK_CTL_NAME_MAX + 1];  /* MOCK_CTL_TAG's value */
} mock_ctl;

void mock_ctl_init(mock_ctl *c);

/* mock_ctl_get returns the key's value, or dflt when it was not given. */
long mock_ctl_get(const mock_ctl *c, mock_ctl_key k, long dflt);

/* mock_ctl_tool returns the tool control's name, or NULL when it was not
 * given. Borrows: valid while c is. */
const char *mock_ctl_tool(const mock_ctl *c);

/* mock_ctl_unset forgets key k, as if it was never given. */
void mock_ctl_unset(mock_ctl *c, mock_ctl_key k);

/* mock_ctl_parse reads "k=v" items separated by commas or whitespace from
 * s[0..n) into c; a key given again overrides the earlier value. On a bad
 * key or value it returns false and writes a message naming the key to err
 * (c may then hold some of the items). Borrows s until return. */
bool mock_ctl_parse(mock_ctl *c, const char *s, size_t n, char *err,
                    size_t errsz);

/* mock_ctl_scan_text applies every "[[mock ...]]" directive found in the
 * NUL-terminated text to c, in order. False with a message in err when a
 * directive is malformed or unterminated. */
bool mock_ctl_scan_text(mock_ctl *c, const char *text, char *err, size_t errsz);

/* mock_ctl_find_directive finds the first "[[mock ...]]" directive in the
 * NUL-terminated text, by the rule mock_ctl_scan_text applies: returns its
 * start and sets *end just past its "]]", or to NULL when that directive is
 * unterminated. NULL when text holds none. Borrows text; both results point
 * into it. */
const char *mock_ctl_find_directive(const char *text, const char **end);

/* mock_ctl_merge copies every key set in over into dst. */
void mock_ctl_merge(mock_ctl *dst, const mock_ctl *over);

#endif
