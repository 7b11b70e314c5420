/* tg_err.h - the one error enum shared by every Tollgate module.
 * A policy deny is a decision, never an error. Thread-safe. */
#ifndef TG_ERR_H
#define TG_ERR_H

typedef enum tg_err {
    TG_OK = 0,
    TG_ENOMEM,    /* allocation failed */
    TG_EINVAL,    /* bad argument or input */
    TG_EIO,       /* read/write failed */
    TG_ENOTFOUND, /* no such item */
    TG_EEXIST,    /* item already exists */
    TG_ECONFIG,   /* configuration is wrong */
    TG_ETOOBIG,   /* over a size limit */
    TG_ETIMEDOUT, /* deadline passed */
    TG_ECLOSED,   /* peer or object closed */
    TG_EPROTO,    /* peer spoke something we cannot decode */
    TG_EVERSION,  /* on-disk or wire version we do not support */
    TG_EFULL,     /* storage full */
    TG_ESYS,      /* a system call failed; errno tells more */
    TG_EAGAIN,    /* try again later */
    TG_EINTERNAL, /* a bug: should not happen */
    TG_ECORRUPT,  /* stored data is damaged or truncated */
} tg_err;

/* tg_strerror returns a static, human-readable text; never NULL. */
const char *tg_strerror(tg_err err);

#endif
