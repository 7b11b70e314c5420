#include "tg_err.h"

const char *
tg_strerror(tg_err err)
{
    switch (err) {
    case TG_OK: return "ok";
    case TG_ENOMEM: return "out of memory";
    case TG_EINVAL: return "invalid argument";
    case TG_EIO: return "input/output error";
    case TG_ENOTFOUND: return "not found";
    case TG_EEXIST: return "already exists";
    case TG_ECONFIG: return "configuration error";
    case TG_ETOOBIG: return "too large";
    case TG_ETIMEDOUT: return "timed out";
    case TG_ECLOSED: return "closed";
    case TG_EPROTO: return "protocol error";
    case TG_EVERSION: return "unsupported version";
    case TG_EFULL: return "storage full";
    case TG_ESYS: return "system call failed";
    case TG_EAGAIN: return "try again";
    case TG_EINTERNAL: return "internal error";
    case TG_ECORRUPT: return "damaged data";
    }
    return "unknown error";
}
