/* inj_certs.c - PEM files read whole, checked with OpenSSL. */
#include "inj_certs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tg_nngtls.h"

void
inj_certs_fini(inj_certs *c)
{
    if (c == NULL) {
        return;
    }
    free(c->cert);
    if (c->key != NULL) {
        OPENSSL_cleanse(c->key, strlen(c->key));
        free(c->key);
    }
    c->cert = NULL;
    c->key  = NULL;
}

tg_err
inj_certs_read(inj_certs *out, const char *cert_file, const char *key_file,
               char *err, size_t errlen)
{
    EVP_MD_CTX *md;
    tg_err      rv;

    memset(out, 0, sizeof(*out));
    if ((rv = tg_tls_read_pem(cert_file, &out->cert, NULL, err, errlen)) !=
            TG_OK ||
        (rv = tg_tls_read_pem(key_file, &out->key, NULL, err, errlen)) !=
            TG_OK) {
        inj_certs_fini(out);
        return rv;
    }
    if ((md = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, out->cert, strlen(out->cert) + 1) != 1 ||
        EVP_DigestUpdate(md, out->key, strlen(out->key)) != 1 ||
        EVP_DigestFinal_ex(md, out->hash, NULL) != 1) {
        EVP_MD_CTX_free(md);
        inj_certs_fini(out);
        snprintf(err, errlen, "cannot hash the certificate");
        return TG_ENOMEM;
    }
    EVP_MD_CTX_free(md);
    return TG_OK;
}

/* inj_certs_no_pass refuses an encrypted key. With no callback OpenSSL
 * asks for the pass phrase on the terminal, and the server (or its
 * certificate watcher) waits there for ever. */
static int
inj_certs_no_pass(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

tg_err
inj_certs_check(const inj_certs *c, char *err, size_t errlen)
{
    BIO  *cb = BIO_new_mem_buf(c->cert, -1);
    BIO  *kb = BIO_new_mem_buf(c->key, -1);
    X509 *x  = cb != NULL ? PEM_read_bio_X509(cb, NULL, inj_certs_no_pass, NULL)
                          : NULL;
    EVP_PKEY *k =
        kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, inj_certs_no_pass, NULL)
                   : NULL;
    tg_err rv = TG_EINVAL;

    if (x == NULL) {
        snprintf(err, errlen,
                 "the certificate is not a PEM X.509 "
                 "certificate");
    } else if (k == NULL) {
        snprintf(err, errlen,
                 "the key is not a PEM private key (or is "
                 "encrypted)");
    } else if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        snprintf(err, errlen, "the certificate has expired");
    } else if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
        snprintf(err, errlen, "the certificate is not valid yet");
    } else if (X509_check_private_key(x, k) != 1) {
        snprintf(err, errlen, "the key does not belong to the certificate");
    } else {
        rv = TG_OK;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    return rv;
}
