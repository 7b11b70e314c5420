/* inj_certs.h - the serving certificate and key as PEM text, with a hash
 * of both to notice a change (cert-manager renewals, the kubelet's ..data
 * symlink swap) and a check that they are a usable pair. Pure; called by
 * inj_server's watcher thread. */
#ifndef INJ_CERTS_H
#define INJ_CERTS_H

#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"
#include "tg_hash.h"


typedef struct inj_certs {
    char   *cert; /* PEM, NUL-terminated; owned */
    char   *key;  /* PEM, NUL-terminated; owned */
    uint8_t hash[TG_SHA256_LEN];
} inj_certs;

/* inj_certs_read reads both files (each at most 1 MiB, tg_tls_read_pem) and
 * hashes them; it does not check them. On error writes why into err.
 * Owns: the strings in *out, free with inj_certs_fini. */
tg_err inj_certs_read(inj_certs *out, const char *cert_file,
                      const char *key_file, char *err, size_t errlen);

/* inj_certs_check: the certificate parses, is within its validity
 * period, and the key is its private key. TG_EINVAL with why in err. */
tg_err inj_certs_check(const inj_certs *c, char *err, size_t errlen);

/* inj_certs_fini frees and wipes the key; NULL-safe. */
void inj_certs_fini(inj_certs *c);

#endif
