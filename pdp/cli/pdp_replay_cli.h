/* pdp_replay_cli.h - `tollgate-pdp replay --bundle CANDIDATE`: the
 * compliance team's dry run before a reload. Every decision record the
 * PDP's rules decided (in a time range, for a tenant) is evaluated again
 * against a candidate bundle with what the record kept (the request, the
 * key's and tenant's attributes, its time), and what would change is
 * counted by old -> new verdict and deciding rule, with the first examples
 * explained. Rate limits and budgets depend on live counters and are not
 * replayed: a request one of them denied counts as allowed by the rules.
 * Not thread-safe. */
#ifndef PDP_REPLAY_CLI_H
#define PDP_REPLAY_CLI_H

#include <stdio.h>

/* pdp_replay_cli runs `replay` with argv the words after it. Exit status:
 * 0 replayed (changes or not), 1 the log or the bundle could not be read,
 * 2 a usage error. */
int pdp_replay_cli(int argc, char **argv, FILE *out, FILE *err);

#endif
