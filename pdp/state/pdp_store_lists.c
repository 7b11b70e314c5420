/* pdp_store_lists.c - the guardrail term lists of pdp_store: lists (each
 * list as it is now), list_history (who changed which, when, to how many
 * terms) and meta "lists_generation" (raised by every change, so a
 * running PDP notices a change the CLI made on the state directory).
 * Layouts are in pdp_store.h; what a term may be in pdp_terms.h. A list
 * record can hold megabytes, so it is encoded into a buffer of its own
 * size rather than through pdp_rec_out. Thread-safe like the rest of the
 * store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pdp_store_int.h"
#include "tg_hash.h"
#include "tg_log.h"

#define PDP_LISTS_GEN_KEY "lists_generation"
#define PDP_LIST_HEAD_MIN (1 + 8 + 8 + 2 + 4) /* a record with no actor */

int
pdp_store__lists_open(pdp_store *st, MDB_txn *txn)
{
    int rc;

    if ((rc = mdb_dbi_open(txn, "lists", MDB_CREATE, &st->lists)) != 0 ||
        (rc = mdb_dbi_open(txn, "list_history", MDB_CREATE,
                           &st->list_history)) != 0) {
        return rc;
    }
    return 0;
}

void
pdp_list_terms_fini(pdp_list_terms *l)
{
    if (l != NULL) {
        free(l->terms);
        l->terms = NULL;
    }
}

/* ---- the list record ----------------------------------------------------- */

static uint8_t *
pdp_list_put_uint(uint8_t *p, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    return p + width;
}

static uint8_t *
pdp_list_put_str(uint8_t *p, const char *s, size_t n)
{
    p = pdp_list_put_uint(p, n, 2);
    memcpy(p, s, n);
    return p + n;
}

/* pdp_store__list_encode and pdp_store__list_size: pdp_store_int.h. */
void
pdp_store__list_encode(uint8_t *p, uint64_t version, int64_t updated_ms,
                       const char *actor, const char *const *v, uint32_t n)
{
    p = pdp_list_put_uint(p, PDP_STORE_REC_VERSION, 1);
    p = pdp_list_put_uint(p, version, 8);
    p = pdp_list_put_uint(p, (uint64_t)updated_ms, 8);
    p = pdp_list_put_str(p, actor, strlen(actor));
    p = pdp_list_put_uint(p, n, 4);
    for (uint32_t i = 0; i < n; i++) {
        p = pdp_list_put_str(p, v[i], strlen(v[i]));
    }
}

size_t
pdp_store__list_size(const char *actor, const char *const *v, uint32_t n)
{
    size_t size = PDP_LIST_HEAD_MIN + strlen(actor);

    for (uint32_t i = 0; i < n; i++) {
        size += 2 + strlen(v[i]);
    }
    return size;
}

/* pdp_list_term reads the next term at in: false (in bad) past the end. */
static bool
pdp_list_term(pdp_rec_in *in, const char **s, size_t *len)
{
    *len = (size_t)pdp_rec_get_uint(in, 2);
    if (in->bad || *len > in->len - in->off) {
        in->bad = true;
        return false;
    }
    *s = (const char *)in->p + in->off;
    in->off += *len;
    return true;
}

/* pdp_list_head reads a record's version, time, actor and term count;
 * in is left at the first term. */
static tg_err
pdp_list_head(pdp_rec_in *in, pdp_list_terms *l)
{
    if (pdp_rec_get_uint(in, 1) != PDP_STORE_REC_VERSION) {
        return in->bad ? TG_EIO : TG_EVERSION;
    }
    l->version    = pdp_rec_get_uint(in, 8);
    l->updated_ms = pdp_rec_get_i64(in);
    pdp_rec_get_str(in, l->actor, sizeof(l->actor));
    l->n = (uint32_t)pdp_rec_get_uint(in, 4);
    return in->bad || l->n > PDP_LIST_TERMS_MAX ? TG_EIO : TG_OK;
}

/* pdp_list_decode reads record v into l (its name aside), checking every
 * term; with want_terms, copies them into l->terms (one allocation). */
static tg_err
pdp_list_decode(const MDB_val *v, pdp_list_terms *l, bool want_terms)
{
    pdp_rec_in  in = {v->mv_data, v->mv_size, 0, false};
    const char *s  = NULL;
    size_t      len;
    size_t      first;
    char       *text;
    tg_err      rv;

    l->terms = NULL;
    l->bytes = 0;
    if ((rv = pdp_list_head(&in, l)) != TG_OK) {
        return rv;
    }
    first = in.off;
    for (uint32_t i = 0; i < l->n; i++) {
        if (!pdp_list_term(&in, &s, &len) ||
            !pdp_terms_check(s, len, NULL, 0)) {
            return TG_EIO;
        }
        l->bytes += len + 1;
    }
    if (l->bytes > PDP_LIST_BYTES_MAX) {
        return TG_EIO;
    }
    if (!want_terms) {
        return TG_OK;
    }
    /* The array, then the text it points into. */
    if ((l->terms = malloc(l->n * sizeof(char *) + l->bytes + 1)) == NULL) {
        return TG_ENOMEM;
    }
    text   = (char *)(l->terms + l->n);
    in.off = first;
    for (uint32_t i = 0; i < l->n; i++) {
        pdp_list_term(&in, &s, &len);
        memcpy(text, s, len);
        text[len]   = '\0';
        l->terms[i] = text;
        text += len + 1;
    }
    return TG_OK;
}

/* pdp_list_same: record v holds exactly the n terms at t, in order. */
static bool
pdp_list_same(const MDB_val *v, const char *const *t, uint32_t n)
{
    pdp_rec_in     in = {v->mv_data, v->mv_size, 0, false};
    pdp_list_terms l;
    const char    *s;
    size_t         len;

    if (pdp_list_head(&in, &l) != TG_OK || l.n != n) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!pdp_list_term(&in, &s, &len) || len != strlen(t[i]) ||
            memcmp(s, t[i], len) != 0) {
            return false;
        }
    }
    return true;
}

/* pdp_list_sha hashes the n terms at v, a newline after each. */
static bool
pdp_list_sha(const char *const *v, uint32_t n, uint8_t out[TG_SHA256_LEN])
{
    size_t bytes = 0;
    char  *text;
    char  *p;

    for (uint32_t i = 0; i < n; i++) {
        bytes += strlen(v[i]) + 1;
    }
    if ((text = p = malloc(bytes + 1)) == NULL) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        memcpy(p, v[i], len);
        p[len] = '\n';
        p += len + 1;
    }
    tg_sha256(text, bytes, out);
    free(text);
    return true;
}

/* ---- list_history and the generation ---------------------------------------
 */

static tg_err
pdp_list_change_decode(const MDB_val *k, const MDB_val *v, pdp_list_change *c)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};

    memset(c, 0, sizeof(*c));
    if (k->mv_size != 8) {
        return TG_EIO;
    }
    if (pdp_rec_get_uint(&in, 1) != PDP_STORE_REC_VERSION) {
        return in.bad ? TG_EIO : TG_EVERSION;
    }
    c->seq   = pdp_store__seq_of(k);
    c->at_ms = pdp_rec_get_i64(&in);
    pdp_rec_get_str(&in, c->name, sizeof(c->name));
    c->version = pdp_rec_get_uint(&in, 8);
    c->op      = (pdp_list_op)pdp_rec_get_uint(&in, 1);
    pdp_rec_get_str(&in, c->actor, sizeof(c->actor));
    c->n = (uint32_t)pdp_rec_get_uint(&in, 4);
    if (in.bad || TG_SHA256_LEN > in.len - in.off) {
        return TG_EIO;
    }
    memcpy(c->sha256, in.p + in.off, TG_SHA256_LEN);
    if (!pdp_terms_name_ok(c->name) ||
        (c->op != PDP_LIST_OP_SET && c->op != PDP_LIST_OP_DELETE)) {
        return TG_EIO;
    }
    return TG_OK;
}

void
pdp_store__list_change_encode(pdp_rec_out *o, const pdp_list_change *c)
{
    pdp_rec_uint(o, PDP_STORE_REC_VERSION, 1);
    pdp_rec_uint(o, (uint64_t)c->at_ms, 8);
    pdp_rec_str(o, c->name);
    pdp_rec_uint(o, c->version, 8);
    pdp_rec_uint(o, (uint64_t)c->op, 1);
    pdp_rec_str(o, c->actor);
    pdp_rec_uint(o, c->n, 4);
    pdp_rec_put(o, c->sha256, TG_SHA256_LEN);
}

/* pdp_list_history_add appends c (its seq written back) inside txn. */
static int
pdp_list_history_add(pdp_store *st, MDB_txn *txn, pdp_list_change *c)
{
    MDB_val     k;
    MDB_val     v;
    uint8_t     key[8];
    pdp_rec_out o;
    int         rc = pdp_store__next_seq(txn, st->list_history, &c->seq);

    if (rc != 0) {
        return rc;
    }
    pdp_store__seq_key(key, c->seq);
    o.len = 0;
    o.bad = false;
    pdp_store__list_change_encode(&o, c);
    if (o.bad) {
        return EINVAL;
    }
    k.mv_size = sizeof(key);
    k.mv_data = key;
    v.mv_size = o.len;
    v.mv_data = o.buf;
    return pdp_store__put(st, txn, st->list_history, &k, &v, MDB_APPEND);
}

/* pdp_list_last_version finds the version of name's newest change in
 * list_history (0: none): a list set again after a delete goes on from
 * there, so no (name, version) is ever used twice. */
static int
pdp_list_last_version(pdp_store *st, MDB_txn *txn, const char *name,
                      uint64_t *version)
{
    MDB_cursor     *cur;
    MDB_val         k;
    MDB_val         v;
    pdp_list_change c;
    int             rc = mdb_cursor_open(txn, st->list_history, &cur);

    *version = 0;
    if (rc != 0) {
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        if (pdp_list_change_decode(&k, &v, &c) == TG_OK &&
            strcmp(c.name, name) == 0) {
            *version = c.version;
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* pdp_list_gen_parse reads the generation's ASCII decimal. */
static bool
pdp_list_gen_parse(const MDB_val *v, uint64_t *gen)
{
    const char *s = v->mv_data;

    *gen = 0;
    if (v->mv_size == 0 || v->mv_size > 20) {
        return false;
    }
    for (size_t i = 0; i < v->mv_size; i++) {
        if (s[i] < '0' || s[i] > '9' ||
            *gen > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10) {
            return false;
        }
        *gen = *gen * 10 + (uint64_t)(s[i] - '0');
    }
    return true;
}

/* pdp_store__lists_gen_raise raises the lists generation inside txn. An
 * unreadable one starts again from 1: a poller compares with !=. */
int
pdp_store__lists_gen_raise(pdp_store *st, MDB_txn *txn)
{
    MDB_val  k = {sizeof(PDP_LISTS_GEN_KEY) - 1, PDP_LISTS_GEN_KEY};
    MDB_val  v;
    uint64_t gen = 0;
    char     num[24];
    int      rc = mdb_get(txn, st->meta, &k, &v);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    if (rc == 0 && !pdp_list_gen_parse(&v, &gen)) {
        gen = 0;
    }
    snprintf(num, sizeof(num), "%llu", (unsigned long long)(gen + 1));
    v.mv_size = strlen(num);
    v.mv_data = num;
    return pdp_store__put(st, txn, st->meta, &k, &v, 0);
}

tg_err
pdp_store_lists_generation_read(pdp_store_reader *rd, uint64_t *gen)
{
    MDB_val v;
    tg_err  rv = pdp_store__get(rd, rd->st->meta, PDP_LISTS_GEN_KEY,
                                sizeof(PDP_LISTS_GEN_KEY) - 1, &v);

    *gen = 0;
    if (rv == TG_ENOTFOUND) {
        return TG_OK;
    }
    if (rv != TG_OK) {
        return rv;
    }
    return pdp_list_gen_parse(&v, gen) ? TG_OK : TG_EIO;
}

uint64_t
pdp_store_lists_generation(pdp_store *st)
{
    pdp_store_reader *rd  = NULL;
    uint64_t          gen = 0;
    tg_err            rv;

    if ((rv = pdp_store_reader_create(st, &rd)) == TG_OK &&
        (rv = pdp_store_read_begin(rd)) == TG_OK) {
        rv = pdp_store_lists_generation_read(rd, &gen);
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    if (rv != TG_OK) {
        tg_error("store: cannot read the lists generation: %s",
                 tg_strerror(rv));
    }
    return gen;
}

/* ---- set and delete --------------------------------------------------------
 */

typedef struct pdp_list_set_arg {
    const char          *name;
    const char *const   *v;
    uint32_t             n;
    const char          *actor;
    int64_t              now_ms;
    uint8_t              sha[TG_SHA256_LEN];
    pdp_list_set_result *res;
} pdp_list_set_arg;

/* pdp_list_next_version is the version name's next change gets: one past
 * its record's (old, 0: none), else past its history's. */
static int
pdp_list_next_version(pdp_store *st, MDB_txn *txn, const char *name,
                      const MDB_val *old, uint64_t *version)
{
    pdp_rec_in in = {old != NULL ? old->mv_data : NULL,
                     old != NULL ? old->mv_size : 0, 0, false};
    pdp_list_terms l;
    uint64_t       last;
    int            rc = pdp_list_last_version(st, txn, name, &last);

    if (rc != 0) {
        return rc;
    }
    /* A record this build cannot read: its history still counts. */
    if (old != NULL && pdp_list_head(&in, &l) == TG_OK && l.version > last) {
        last = l.version;
    }
    *version = last + 1;
    return 0;
}

static int
pdp_list_set_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_list_set_arg *a = arg;
    MDB_val           k = {strlen(a->name), (void *)a->name};
    MDB_val           v;
    pdp_list_change   c;
    int               rc = mdb_get(txn, st->lists, &k, &v);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    memset(a->res, 0, sizeof(*a->res));
    a->res->n       = a->n;
    a->res->created = rc == MDB_NOTFOUND;
    if (rc == 0 && pdp_list_same(&v, a->v, a->n)) {
        pdp_rec_in     in = {v.mv_data, v.mv_size, 0, false};
        pdp_list_terms l;

        pdp_list_head(&in, &l);
        a->res->version = l.version;
        return MDB_KEYEXIST; /* nothing to write: no txn, no audit line */
    }
    memset(&c, 0, sizeof(c));
    if ((rc = pdp_list_next_version(st, txn, a->name, rc == 0 ? &v : NULL,
                                    &c.version)) != 0) {
        return rc;
    }
    /* Encoded apart, not in place (MDB_RESERVE): the change log keeps a
     * copy of the record. */
    v.mv_size = pdp_store__list_size(a->actor, a->v, a->n);
    if ((v.mv_data = malloc(v.mv_size)) == NULL) {
        return ENOMEM;
    }
    pdp_store__list_encode(v.mv_data, c.version, a->now_ms, a->actor, a->v,
                           a->n);
    rc = pdp_store__rput(st, txn, st->lists, &k, &v, 0);
    free(v.mv_data);
    if (rc != 0) {
        return rc;
    }
    c.at_ms = a->now_ms;
    c.op    = PDP_LIST_OP_SET;
    c.n     = a->n;
    snprintf(c.name, sizeof(c.name), "%s", a->name);
    snprintf(c.actor, sizeof(c.actor), "%s", a->actor);
    memcpy(c.sha256, a->sha, sizeof(c.sha256));
    if ((rc = pdp_list_history_add(st, txn, &c)) != 0 ||
        (rc = pdp_store__lists_gen_raise(st, txn)) != 0) {
        return rc;
    }
    a->res->changed = true;
    a->res->version = c.version;
    pdp_store__armed_amend(st, "version", c.version);
    return 0;
}

tg_err
pdp_store_list_set(pdp_store *st, const char *name, const char *const *v,
                   uint32_t n, const char *actor, int64_t now_ms,
                   pdp_list_set_result *res)
{
    pdp_list_set_arg a = {name, v, n, NULL, now_ms, {0}, res};
    char             who[PDP_ACTOR_MAX];
    tg_err           rv;

    if (!pdp_terms_name_ok(name) || (v == NULL && n > 0) ||
        !pdp_terms_list_ok(v, n)) {
        return TG_EINVAL;
    }
    snprintf(who, sizeof(who), "%s", actor != NULL ? actor : "");
    a.actor = who;
    if (!pdp_list_sha(v, n, a.sha)) {
        return TG_ENOMEM;
    }
    rv = pdp_store__refused(st, pdp_store__write(st, pdp_list_set_txn, &a));
    return rv == TG_EEXIST ? TG_OK : rv; /* unchanged: res says so */
}

typedef struct pdp_list_del_arg {
    const char      *name;
    const char      *actor;
    int64_t          now_ms;
    pdp_list_change *c;
} pdp_list_del_arg;

static int
pdp_list_del_txn(pdp_store *st, MDB_txn *txn, void *arg)
{
    pdp_list_del_arg *a = arg;
    pdp_list_change  *c = a->c;
    MDB_val           k = {strlen(a->name), (void *)a->name};
    MDB_val           v;
    pdp_list_terms    old;
    int               rc = mdb_get(txn, st->lists, &k, &v);

    if (rc != 0) {
        return rc; /* MDB_NOTFOUND: no such list */
    }
    memset(c, 0, sizeof(*c));
    if ((rc = pdp_list_next_version(st, txn, a->name, &v, &c->version)) != 0) {
        return rc;
    }
    /* What it removed; a damaged record is deleted as holding nothing. */
    memset(&old, 0, sizeof(old));
    switch (pdp_list_decode(&v, &old, true)) {
    case TG_OK:
        c->n = old.n;
        break;
    case TG_ENOMEM:
        return ENOMEM;
    default:
        pdp_list_terms_fini(&old);
        break;
    }
    if (!pdp_list_sha((const char *const *)old.terms, c->n, c->sha256)) {
        pdp_list_terms_fini(&old);
        return ENOMEM;
    }
    pdp_list_terms_fini(&old);
    c->at_ms = a->now_ms;
    c->op    = PDP_LIST_OP_DELETE;
    snprintf(c->name, sizeof(c->name), "%s", a->name);
    snprintf(c->actor, sizeof(c->actor), "%s", a->actor);
    if ((rc = pdp_store__rdel(st, txn, st->lists, &k)) != 0 ||
        (rc = pdp_list_history_add(st, txn, c)) != 0 ||
        (rc = pdp_store__lists_gen_raise(st, txn)) != 0) {
        return rc;
    }
    pdp_store__armed_amend(st, "count", c->n);
    pdp_store__armed_amend(st, "version", c->version); /* goes first */
    return 0;
}

tg_err
pdp_store_list_del(pdp_store *st, const char *name, const char *actor,
                   int64_t now_ms, pdp_list_change *out)
{
    pdp_list_change  c;
    pdp_list_del_arg a = {name, actor != NULL ? actor : "", now_ms, &c};
    tg_err           rv;

    if (!pdp_terms_name_ok(name)) {
        return TG_ENOTFOUND;
    }
    rv = pdp_store__refused(st, pdp_store__write(st, pdp_list_del_txn, &a));
    if (rv == TG_OK && out != NULL) {
        *out = c;
    }
    return rv;
}

/* ---- reads ------------------------------------------------------------------
 */

tg_err
pdp_store_list_read(pdp_store_reader *rd, const char *name, pdp_list_terms *out)
{
    MDB_val v;
    tg_err  rv;

    memset(out, 0, sizeof(*out));
    if (!pdp_terms_name_ok(name)) {
        return TG_ENOTFOUND;
    }
    if ((rv = pdp_store__get(rd, rd->st->lists, name, strlen(name), &v)) !=
        TG_OK) {
        return rv;
    }
    if ((rv = pdp_list_decode(&v, out, true)) != TG_OK) {
        pdp_list_terms_fini(out);
        return rv;
    }
    snprintf(out->name, sizeof(out->name), "%s", name);
    return TG_OK;
}

tg_err
pdp_store_list_get(pdp_store *st, const char *name, pdp_list_terms *out)
{
    pdp_store_reader *rd = NULL;
    tg_err            rv;

    memset(out, 0, sizeof(*out));
    if ((rv = pdp_store_reader_create(st, &rd)) != TG_OK) {
        return rv;
    }
    if ((rv = pdp_store_read_begin(rd)) == TG_OK) {
        rv = pdp_store_list_read(rd, name, out);
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rv;
}

typedef struct pdp_list_names_arg {
    pdp_store_list_fn fn;
    void             *arg;
    pdp_list_terms    l;
} pdp_list_names_arg;

/* pdp_list_name copies a lists key into name; false when it is not one. */
static bool
pdp_list_name(const MDB_val *k, char name[PDP_LIST_NAME_MAX + 1])
{
    if (k->mv_size == 0 || k->mv_size > PDP_LIST_NAME_MAX) {
        return false;
    }
    memcpy(name, k->mv_data, k->mv_size);
    name[k->mv_size] = '\0';
    return pdp_terms_name_ok(name);
}

static tg_err
pdp_list_names_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_list_names_arg *a = arg;
    tg_err              rv;

    memset(&a->l, 0, sizeof(a->l));
    if (!pdp_list_name(k, a->l.name)) {
        return TG_EIO;
    }
    if ((rv = pdp_list_decode(v, &a->l, false)) != TG_OK) {
        return rv;
    }
    a->fn(a->arg, &a->l);
    return TG_OK;
}

tg_err
pdp_store_list_names(pdp_store *st, pdp_store_list_fn fn, void *arg)
{
    pdp_list_names_arg *a = calloc(1, sizeof(*a));
    tg_err              rv;

    if (a == NULL) {
        return TG_ENOMEM;
    }
    a->fn  = fn;
    a->arg = arg;
    rv     = pdp_store__scan(st, st->lists, false, pdp_list_names_one, a);
    free(a);
    return rv;
}

typedef struct pdp_list_history_arg {
    const char              *name;
    uint32_t                 limit;
    uint32_t                 given;
    pdp_store_list_change_fn fn;
    void                    *arg;
} pdp_list_history_arg;

static tg_err
pdp_list_history_one(const MDB_val *k, const MDB_val *v, void *arg)
{
    pdp_list_history_arg *a = arg;
    pdp_list_change       c;
    tg_err                rv = pdp_list_change_decode(k, v, &c);

    if (rv != TG_OK) {
        return rv;
    }
    if (a->name != NULL && strcmp(c.name, a->name) != 0) {
        return TG_OK;
    }
    if (!a->fn(a->arg, &c) || (a->limit > 0 && ++a->given >= a->limit)) {
        return TG_EEXIST; /* stops the walk */
    }
    return TG_OK;
}

tg_err
pdp_store_list_history(pdp_store *st, const char *name, uint32_t limit,
                       pdp_store_list_change_fn fn, void *arg)
{
    pdp_list_history_arg a = {name, limit, 0, fn, arg};

    return pdp_store__scan(st, st->list_history, true, pdp_list_history_one,
                           &a);
}

/* ---- state check ------------------------------------------------------------
 */

tg_err
pdp_store__lists_check_rec(const char *db, const MDB_val *k, const MDB_val *v)
{
    pdp_list_change c;
    pdp_list_terms  l;

    if (strcmp(db, "list_history") == 0) {
        return pdp_list_change_decode(k, v, &c);
    }
    if (strcmp(db, "lists") != 0) {
        return TG_ENOTFOUND;
    }
    memset(&l, 0, sizeof(l));
    if (!pdp_list_name(k, l.name)) {
        return TG_EIO;
    }
    return pdp_list_decode(v, &l, false);
}
