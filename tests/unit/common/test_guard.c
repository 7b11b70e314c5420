/* common.guard - the guardrail engine: a spec compiles or says exactly
 * what is wrong with it; a scan finds what the rules in the mask name at
 * that stage and nothing else; redaction replaces exactly the spans found;
 * a stream fed in any chunks releases what the block scan of the whole
 * text gives, holding back no more than it must. Specs are written with '
 * for " (spec_parse swaps them). The tests name pii.email and pii.card and
 * custom patterns only, so they hold as the built-in table grows. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_guard.h"
#include "tg_jstrict.h"
#include "tg_unit.h"

static cJSON *
spec_parse(const char *json)
{
    char  *t = strdup(json);
    cJSON *j;

    for (char *p = t; *p != '\0'; p++) {
        *p = *p == '\'' ? '"' : *p;
    }
    j = cJSON_Parse(t);
    free(t);
    return j;
}

static tg_err
compile(const char *json, tg_guard_set **gs, char *err, size_t errlen)
{
    cJSON *spec = spec_parse(json);
    tg_err rv;

    CU_ASSERT_PTR_NOT_NULL_FATAL(spec);
    rv = tg_guard_set_compile(gs, spec, err, errlen);
    cJSON_Delete(spec);
    return rv;
}

static tg_guard_set *
compile_ok(const char *json)
{
    char          err[4096];
    tg_guard_set *gs = NULL;
    tg_err        rv = compile(json, &gs, err, sizeof(err));

    if (rv != TG_OK) {
        fprintf(stderr, "compile failed: %s\n", err);
    }
    CU_ASSERT_EQUAL_FATAL(rv, TG_OK);
    return gs;
}

static int
det_of(const tg_guard_set *gs, const char *name)
{
    for (size_t i = 0; i < tg_guard_set_detector_count(gs); i++) {
        if (strcmp(tg_guard_set_detector_name(gs, i), name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* render writes hits as "rule/detector@start-end ...". */
static void
render(const tg_guard_set *gs, const tg_guard_hits *h, char *out, size_t cap)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < h->n && o < cap; i++) {
        const tg_guard_hit *x = &h->v[i];
        o += (size_t)snprintf(out + o, cap - o, "%s%s/%s@%u-%u", i ? " " : "",
                              tg_guard_set_rule_id(gs, x->rule),
                              tg_guard_set_detector_name(gs, x->detector),
                              x->start, x->end);
    }
}

/* ---- compile errors --------------------------------------------------- */

typedef struct ecase {
    const char *name;
    const char *spec;
    const char *says[3]; /* pieces of the error text */
} ecase;

static const ecase ecases[] = {
    {"an unknown detector",
     "{'rules':[{'id':'r','detectors':['pii.emial']}]}",
     {"rule r: unknown detector \"pii.emial\"", "pii",
      "tollgate-pdp guardrails detectors"}},
    {"an unknown category",
     "{'rules':[{'id':'r','detectors':['nosuch.*']}]}",
     {"rule r: unknown detector \"nosuch.*\"", NULL, NULL}},
    {"a bad regex, with its position",
     "{'rules':[{'id':'r','patterns':[{'name':'emp','regex':'EMP-([0-9]{6}'}]}]"
     "}",
     {"rule r: pattern \"emp\": ", "index", NULL}},
    {"an unbounded pattern",
     "{'rules':[{'id':'r','patterns':[{'name':'p','regex':'id-[0-9]+'}]}]}",
     {"rule r: pattern \"p\" can match text of unbounded length",
      "bound every repeat", NULL}},
    {"a pattern wider than a stream holds",
     "{'rules':[{'id':'r','patterns':[{'name':'p','regex':'a{1,2000}'}]}]}",
     {"rule r: pattern \"p\" can match 2000 bytes", "1024", NULL}},
    {"an end-of-text anchor",
     "{'rules':[{'id':'r','patterns':[{'name':'p','regex':'[$]x[[:alpha:]$]"
     "\\\\$y|secret$'}]}]}",
     {"rule r: pattern \"p\" anchors at the end of the text", NULL, NULL}},
    {"a pattern that matches nothing",
     "{'rules':[{'id':'r','patterns':[{'name':'p','regex':'a?'}]}]}",
     {"rule r: pattern \"p\" can match empty text", NULL, NULL}},
    {"a list the spec does not hold",
     "{'rules':[{'id':'r','lists':['rivals']}],'lists':{'other':{'terms':["
     "'x'"
     "]}}}",
     {"rule r: list \"rivals\" not found", NULL, NULL}},
    {"an unknown field in a rule",
     "{'rules':[{'id':'r','detector':['pii.email']}]}",
     {"rule r: unknown field \"detector\"", "detectors", NULL}},
    {"an unknown field in a pattern",
     "{'rules':[{'id':'r','patterns':[{'name':'p','regex':'a{1,3}','flags':"
     "1}]}]}",
     {"rule r: pattern \"p\": unknown field \"flags\"", NULL, NULL}},
    {"an unknown validator",
     "{'rules':[{'id':'r','patterns':[{'name':'p','regex':'a{1,3}',"
     "'validator':'nope'}]}]}",
     {"unknown validator \"nope\"", "luhn", NULL}},
    {"an unsupported schema keyword",
     "{'rules':[{'id':'r','output':{'schema':{'type':'object','properties':"
     "{'a':{'type':'string','pattern':'^x'}}}}}]}",
     {"rule r: output: schema: keyword \"pattern\" is not supported",
      "/properties/a", NULL}},
    {"a malformed schema type",
     "{'rules':[{'id':'r','output':{'schema':{'type':'text'}}}]}",
     {"rule r: output: schema: at /: \"type\" must be", NULL, NULL}},
    {"a duplicate rule id",
     "{'rules':[{'id':'r','terms':['a']},{'id':'r','terms':['b']}]}",
     {"rule r: duplicate rule id", NULL, NULL}},
    {"an unknown action",
     "{'rules':[{'id':'r','terms':['a'],'action':'drop'}]}",
     {"rule r: \"action\" must be", NULL, NULL}},
    {"an unknown stage",
     "{'rules':[{'id':'r','terms':['a'],'stages':['inbound']}]}",
     {"rule r: \"stages\" must list", NULL, NULL}},
    {"a term with nothing to match",
     "{'rules':[{'id':'r','terms':['  ']}]}",
     {"rule r: term \"  \" has nothing to match", NULL, NULL}},
    {"output checks on an input rule",
     "{'rules':[{'id':'r','stages':['input'],'output':{'json':true}}]}",
     {"rule r: \"output\" checks the answer", NULL, NULL}},
    {"a rule that checks nothing",
     "{'rules':[{'id':'r','action':'audit'}]}",
     {"rule r: checks nothing", NULL, NULL}},
    {"a rule without an id",
     "{'rules':[{'terms':['a']}]}",
     {"rule #1: needs an \"id\"", NULL, NULL}},
    {"an unknown field in the spec",
     "{'rules':[],'rulez':[]}",
     {"spec: unknown field \"rulez\"", NULL, NULL}},
    {"every problem on its own line",
     "{'rules':[{'id':'a','detectors':['nope']},{'id':'b','lists':['x']}]}",
     {"rule a: unknown detector \"nope\"", "\nrule b: list \"x\" not found",
      NULL}},
    {NULL, NULL, {NULL, NULL, NULL}},
};

static void
test_compile_errors(void)
{
    for (const ecase *c = ecases; c->name != NULL; c++) {
        char          err[4096];
        tg_guard_set *gs = (tg_guard_set *)1;
        tg_err        rv = compile(c->spec, &gs, err, sizeof(err));
        bool          ok = rv == TG_EINVAL && gs == NULL;
        for (int i = 0; i < 3 && c->says[i] != NULL; i++) {
            ok = ok && strstr(err, c->says[i]) != NULL;
        }
        if (!ok) {
            fprintf(stderr, "case \"%s\": rv %d err \"%s\"\n", c->name, (int)rv,
                    err);
            CU_FAIL(c->name);
        }
    }
}

/* Over TG_GUARD_RULES_MAX rules is refused; exactly that many compile. */
static void
test_rule_limit(void)
{
    char          spec[16384];
    char          err[512];
    size_t        o  = 0;
    tg_guard_set *gs = NULL;

    o += (size_t)snprintf(spec + o, sizeof(spec) - o, "{'rules':[");
    for (int i = 0; i < TG_GUARD_RULES_MAX; i++) {
        o += (size_t)snprintf(spec + o, sizeof(spec) - o,
                              "%s{'id':'r%d','terms':['t%d']}", i ? "," : "", i,
                              i);
    }
    snprintf(spec + o, sizeof(spec) - o, "]}");
    CU_ASSERT_EQUAL(compile(spec, &gs, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(tg_guard_set_rule_count(gs), TG_GUARD_RULES_MAX);
    tg_guard_set_unref(gs);
    snprintf(spec + o, sizeof(spec) - o, ",{'id':'one-more','terms':['x']}]}");
    CU_ASSERT_EQUAL(compile(spec, &gs, err, sizeof(err)), TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "at most 64"));
}

/* ---- the detector table ------------------------------------------------ */

static void
test_detector_table(void)
{
    tg_guard_set *gs = compile_ok(
        "{'rules':["
        "{'id':'a','detectors':['pii'],'lists':['rivals'],'action':'redact'},"
        "{'id':'b','stages':['output'],'detectors':['pii.email'],"
        "'lists':['rivals'],'terms':['x'],'canary':true,"
        "'patterns':[{'name':'employee_id','regex':'EMP-[0-9]{6}'},"
        "{'name':'badge','regex':'B[0-9]{4}','type':'BADGE_NO',"
        "'validator':'luhn','caseless':true},"
        "{'name':'price','regex':'[$][0-9]{1,6}[[:alpha:]$]\\\\$'}],"
        "'output':{'json':true,'schema':{'type':'object'},'max_length':9}}],"
        "'lists':{'rivals':{'version':3,'terms':['acme']}}}");
    size_t n   = tg_guard_set_detector_count(gs);
    size_t pii = 0;
    int    d;

    /* "pii" is every pii.* built-in, each once, shared by both rules. */
    for (size_t i = 0; i < n; i++) {
        const char *name = tg_guard_set_detector_name(gs, i);
        pii += strncmp(name, "pii.", 4) == 0;
        CU_ASSERT_EQUAL(det_of(gs, name), (int)i); /* unique names but */
        if (strcmp(name, "terms") == 0) {          /* "terms" (per rule) */
            CU_ASSERT_STRING_EQUAL(tg_guard_set_detector_type(gs, i), "TERM");
        }
    }
    CU_ASSERT(pii >= 2);
    CU_ASSERT(det_of(gs, "pii.email") >= 0 && det_of(gs, "pii.card") >= 0);
    CU_ASSERT_STRING_EQUAL(
        tg_guard_set_detector_type(gs, (size_t)det_of(gs, "pii.card")), "CARD");
    d = det_of(gs, "custom.employee_id");
    CU_ASSERT_FATAL(d >= 0);
    CU_ASSERT_STRING_EQUAL(tg_guard_set_detector_type(gs, (size_t)d),
                           "EMPLOYEE_ID");
    d = det_of(gs, "custom.badge");
    CU_ASSERT_FATAL(d >= 0);
    CU_ASSERT_STRING_EQUAL(tg_guard_set_detector_type(gs, (size_t)d),
                           "BADGE_NO");
    CU_ASSERT(det_of(gs, "custom.price") >= 0); /* a '$' that is no anchor */
    CU_ASSERT(det_of(gs, "list.rivals") >= 0);
    CU_ASSERT_STRING_EQUAL(
        tg_guard_set_detector_type(gs, (size_t)det_of(gs, "list.rivals")),
        "TERM");
    CU_ASSERT(det_of(gs, "shape.json") >= 0);
    CU_ASSERT(det_of(gs, "shape.schema") >= 0);
    CU_ASSERT(det_of(gs, "shape.max_length") >= 0);
    d = det_of(gs, "injection.canary_leak");
    CU_ASSERT_FATAL(d >= 0);
    CU_ASSERT_STRING_EQUAL(tg_guard_set_detector_type(gs, (size_t)d), "CANARY");
    CU_ASSERT_STRING_EQUAL(tg_guard_set_detector_name(gs, n), "");
    /* The rules as compiled. */
    CU_ASSERT_EQUAL(tg_guard_set_rule_count(gs), 2);
    CU_ASSERT_EQUAL(tg_guard_set_rule_find(gs, "b"), 1);
    CU_ASSERT_EQUAL(tg_guard_set_rule_find(gs, "c"), -1);
    CU_ASSERT_STRING_EQUAL(tg_guard_set_rule_id(gs, 0), "a");
    CU_ASSERT_STRING_EQUAL(tg_guard_set_rule_id(gs, 2), "");
    CU_ASSERT_EQUAL(tg_guard_set_rule_action(gs, 0), TG_GUARD_REDACT);
    CU_ASSERT_EQUAL(tg_guard_set_rule_action(gs, 1), TG_GUARD_BLOCK);
    CU_ASSERT_EQUAL(tg_guard_set_rule_stages(gs, 0),
                    1u << TG_GUARD_INPUT | 1u << TG_GUARD_OUTPUT);
    CU_ASSERT_EQUAL(tg_guard_set_rule_stages(gs, 1), 1u << TG_GUARD_OUTPUT);
    CU_ASSERT_FALSE(tg_guard_set_rule_canary(gs, 0));
    CU_ASSERT_TRUE(tg_guard_set_rule_canary(gs, 1));
    /* The hold-back covers the longest output match, and the canary. */
    CU_ASSERT(tg_guard_set_holdback(gs, 2, 0) >= 10); /* EMP-123456 */
    CU_ASSERT_EQUAL(tg_guard_set_holdback(gs, 2, 5000), 5000);
    CU_ASSERT_EQUAL(tg_guard_set_holdback(gs, 0, 5000), 0);
    tg_guard_set_ref(gs);
    tg_guard_set_unref(gs);
    tg_guard_set_unref(gs);
    tg_guard_set_unref(NULL);
}

/* ---- scanning and redaction ------------------------------------------- */

/* Rules 0..6; the bit of rule i is 1 << i. */
static const char *const scan_spec =
    "{'rules':["
    "{'id':'in-mail','stages':['input'],'detectors':['pii.email'],"
    "'action':'redact'},"
    "{'id':'out-emp','stages':['output'],'patterns':[{'name':'employee_id',"
    "'regex':'EMP-[0-9]{6}'}]},"
    "{'id':'both-pii','detectors':['pii.email','pii.card'],'action':'audit'},"
    "{'id':'words','terms':['cafe','project titan','new york','york city',"
    "'c++','\xce\xb1\xce\xb8\xce\xb7\xce\xbd\xce\xb1'],"
    "'action':'redact','mask':'<{type}>'},"
    "{'id':'rivals','lists':['competitors'],'action':'block'},"
    "{'id':'xs','patterns':[{'name':'xs','regex':'x{1,5}'}],'action':'redact'},"
    "{'id':'xy','patterns':[{'name':'xy','regex':'x{1,3}y'}],'mask':'#'}],"
    "'lists':{'competitors':{'version':3,'terms':['Acme Corp','globex']}}}";

#define ALL UINT64_MAX
#define R(i) (1ull << (i))
#define IN TG_GUARD_INPUT
#define OUT TG_GUARD_OUTPUT

typedef struct scase {
    const char    *name;
    tg_guard_stage stage;
    uint64_t       mask;
    const char    *text;
    const char    *want; /* hits, rendered */
} scase;

static const scase scases[] = {
    {"input: the input rules find the address", IN, ALL,
     "Write to bob@example.com re EMP-123456.",
     "in-mail/pii.email@9-24 both-pii/pii.email@9-24 xs/custom.xs@14-15"},
    {"a rule not in the mask finds nothing", IN, R(2) | R(1),
     "Write to bob@example.com re EMP-123456.", "both-pii/pii.email@9-24"},
    {"output: an input-only rule finds nothing", OUT, ALL & ~R(5),
     "Write to bob@example.com re EMP-123456.",
     "both-pii/pii.email@9-24 out-emp/custom.employee_id@28-38"},
    {"an empty mask finds nothing", OUT, 0, "bob@example.com", ""},
    {"a card, validated", IN, R(2), "card 4111 1111 1111 1111.",
     "both-pii/pii.card@5-24"},
    {"a card that fails Luhn", IN, R(2), "card 4111 1111 1111 1112.", ""},
    {"overlapping matches merge into one span", IN, R(5), "aa xxxxxxxx bb",
     "xs/custom.xs@3-11"},
    {"overlapping terms merge", IN, R(3), "I love new york city!",
     "words/terms@7-20"},
    {"a term in other case and accents", IN, R(3), "Un CAF\xc3\x89 noir",
     "words/terms@3-8"},
    {"a term inside a word is not one", IN, R(3), "cafeteria", ""},
    {"an accented letter continues a word", IN, R(3), "Caf\xc3\xa9teria", ""},
    {"a letter before a term", IN, R(3),
     "xcafe \xc3\xa9"
     "cafe",
     ""},
    {"punctuation ends a word", IN, R(3), "Caf\xc3\xa9.", "words/terms@0-5"},
    {"a decomposed accent belongs to the term", IN, R(3), "cafe\xcc\x81 ok",
     "words/terms@0-6"},
    {"no spaces in CJK text: a Latin term still counts", IN, R(3),
     "\xe4\xb8\xad\xe6\x96\x87"
     "cafe\xe4\xb8\xad",
     "words/terms@6-10"},
    {"any whitespace between words", IN, R(3), "PROJECT\xc2\xa0 \n Titan!",
     "words/terms@0-17"},
    {"but not a long run", IN, R(3), "project                     titan", ""},
    {"a term ending in punctuation", IN, R(3), "C++ code, not abc++",
     "words/terms@0-3"},
    {"Greek in other case", IN, R(3),
     "\xce\x91\xce\x98\xce\x97\xce\x9d\xce\x91!", "words/terms@0-10"},
    {"a list, case and spacing aside", OUT, R(4),
     "We beat ACME   corp and Globex.",
     "rivals/list.competitors@8-19 rivals/list.competitors@24-30"},
    {"invalid UTF-8 is scanned, the address still found", OUT, R(2),
     "\xff\xfe"
     "bob@example.com \xc3(",
     "both-pii/pii.email@2-17"},
    {"invalid UTF-8 beside a term", OUT, R(3), "caf\xe9 cafe \xed\xa0\x80",
     "words/terms@5-9"},
    {"hits in order of start, then rule", IN, R(0) | R(2) | R(5),
     "xx a@b.io 4111111111111111",
     "xs/custom.xs@0-2 in-mail/pii.email@3-9 both-pii/pii.email@3-9 "
     "both-pii/pii.card@10-26"},
    {NULL, IN, 0, NULL, NULL},
};

static void
test_scan(void)
{
    tg_guard_set     *gs = compile_ok(scan_spec);
    tg_guard_scratch *sc = tg_guard_scratch_create();

    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    for (const scase *c = scases; c->name != NULL; c++) {
        tg_guard_hits h = {0};
        char          got[1024];
        CU_ASSERT_EQUAL(tg_guard_scan(gs, sc, c->stage, c->mask, NULL, c->text,
                                      strlen(c->text), &h),
                        TG_OK);
        render(gs, &h, got, sizeof(got));
        if (strcmp(got, c->want) != 0) {
            fprintf(stderr, "case \"%s\": got \"%s\" want \"%s\"\n", c->name,
                    got, c->want);
            CU_FAIL(c->name);
        }
        tg_guard_hits_fini(&h);
    }
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

typedef struct rcase {
    const char *name;
    uint64_t    mask;
    uint64_t    redact;
    const char *text;
    const char *want;
} rcase;

static const rcase rcases[] = {
    {"an address", ALL, R(0), "Write to bob@example.com re EMP-123456.",
     "Write to [REDACTED:EMAIL] re EMP-123456."},
    {"hits of rules not in redact_mask stay", ALL, 0,
     "Write to bob@example.com.", "Write to bob@example.com."},
    {"two rules on one span: masked once", ALL, R(0) | R(2),
     "a@b.io and c@d.io", "[REDACTED:EMAIL] and [REDACTED:EMAIL]"},
    {"a merged span, masked once", R(5), R(5), "aa xxxxxxxx bb",
     "aa [REDACTED:XS] bb"},
    {"overlapping rules: the earliest hit's mask", R(5) | R(6), R(5) | R(6),
     "<xxxxy>", "<[REDACTED:XS]>"},
    {"a template without {type}", R(6), R(6), "<xxy|xy>", "<#|#>"},
    {"a term, accents and all", R(3), R(3),
     "Un CAF\xc3\x89 noir, new york city.", "Un <TERM> noir, <TERM>."},
    {"the text around invalid UTF-8 kept byte for byte", R(2), R(2),
     "\xff"
     "a@b.io\xc3",
     "\xff[REDACTED:EMAIL]\xc3"},
    {NULL, 0, 0, NULL, NULL},
};

static void
test_redact(void)
{
    tg_guard_set     *gs = compile_ok(scan_spec);
    tg_guard_scratch *sc = tg_guard_scratch_create();

    for (const rcase *c = rcases; c->name != NULL; c++) {
        tg_guard_hits h = {0};
        tg_buf        out;
        tg_buf_init(&out, 0);
        CU_ASSERT_EQUAL(tg_guard_scan(gs, sc, IN, c->mask, NULL, c->text,
                                      strlen(c->text), &h),
                        TG_OK);
        CU_ASSERT_EQUAL(tg_guard_redact(gs, c->text, strlen(c->text), h.v, h.n,
                                        c->redact, &out),
                        TG_OK);
        if (out.data == NULL || strcmp(out.data, c->want) != 0) {
            fprintf(stderr, "case \"%s\": got \"%s\"\n", c->name,
                    out.data ? out.data : "(null)");
            CU_FAIL(c->name);
        }
        tg_buf_fini(&out);
        tg_guard_hits_fini(&h);
    }
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

/* A hit past the text, or of a rule the set does not have, is refused and
 * out is left as it was; a cap on out fails the whole redaction. */
static void
test_redact_refuses(void)
{
    tg_guard_set *gs  = compile_ok(scan_spec);
    tg_guard_hit  bad = {0, 0, 2, 99};
    tg_guard_hit  ok  = {0, 0, 0, 3};
    tg_buf        out;

    tg_buf_init(&out, 12);
    CU_ASSERT_EQUAL(tg_guard_redact(gs, "abc", 3, &bad, 1, ALL, &out),
                    TG_EINVAL);
    bad = (tg_guard_hit){70, 0, 0, 1};
    CU_ASSERT_EQUAL(tg_guard_redact(gs, "abc", 3, &bad, 1, ALL, &out),
                    TG_EINVAL);
    CU_ASSERT_EQUAL(tg_guard_redact(gs, "abcdef", 6, &ok, 1, ALL, &out),
                    TG_ETOOBIG);
    CU_ASSERT_EQUAL(out.len, 0);
    tg_buf_fini(&out);
    tg_guard_set_unref(gs);
}

/* A match just before the end of the text is found whatever the length
 * of the text before it. (vectorscan 5.4.9 on AVX-512 hosts misses about
 * half of these unless the engine pads the text it scans.) */
static void
test_match_at_the_end(void)
{
    tg_guard_set *gs =
        compile_ok("{'rules':[{'id':'mail','detectors':['pii.email']},"
                   "{'id':'at','patterns':[{'name':'at','regex':'[a-z]{1,4}@[a-"
                   "z]{3,6}'}]}]}");
    tg_guard_scratch *sc = tg_guard_scratch_create();
    char              text[512];
    size_t            missed = 0;

    for (size_t n = 0; n < 300; n++) {
        tg_guard_hits h = {0};
        memset(text, '.', n);
        memcpy(text + n, " bob@example.com x", 19);
        CU_ASSERT_EQUAL(tg_guard_scan(gs, sc, IN, ALL, NULL, text, n + 18, &h),
                        TG_OK);
        missed += h.n != 2;
        tg_guard_hits_fini(&h);
    }
    CU_ASSERT_EQUAL(missed, 0);
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

/* A term list of thousands of terms compiles and each of its terms is
 * found. */
static void
test_big_list(void)
{
    size_t            n   = 5000;
    size_t            cap = n * 32 + 256;
    char             *s   = malloc(cap);
    size_t            o   = 0;
    tg_guard_scratch *sc  = tg_guard_scratch_create();
    tg_guard_hits     h   = {0};
    tg_guard_set     *gs;
    const char       *text = "notes on Company Name4321 and companyname12";

    o += (size_t)snprintf(s + o, cap - o,
                          "{'rules':[{'id':'big','lists':['names']}],"
                          "'lists':{'names':{'terms':[");
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(s + o, cap - o, "%s'company name%zu'",
                              i ? "," : "", i);
    }
    snprintf(s + o, cap - o, "]}}}");
    gs = compile_ok(s);
    CU_ASSERT_EQUAL(
        tg_guard_scan(gs, sc, OUT, ALL, NULL, text, strlen(text), &h), TG_OK);
    CU_ASSERT_EQUAL_FATAL(h.n, 1);
    CU_ASSERT_EQUAL(h.v[0].start, 9);
    CU_ASSERT_EQUAL(h.v[0].end, 25);
    tg_guard_hits_fini(&h);
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
    free(s);
}

/* The canary is found wherever it is, for canary rules only. */
static void
test_canary(void)
{
    tg_guard_set *gs = compile_ok(
        "{'rules':[{'id':'words','terms':['x']},"
        "{'id':'leak','stages':['output'],'canary':true,'action':'redact',"
        "'mask':'[{type}]'}]}");
    tg_guard_scratch *sc   = tg_guard_scratch_create();
    tg_guard_hits     h    = {0};
    const char       *text = "a CANARY-7f3a9c b CANARY-7f3a9c";
    char              got[256];
    tg_buf            out;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL(tg_guard_scan(gs, sc, OUT, ALL, "CANARY-7f3a9c", text,
                                  strlen(text), &h),
                    TG_OK);
    render(gs, &h, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "leak/injection.canary_leak@2-15 "
                                "leak/injection.canary_leak@18-31");
    CU_ASSERT_EQUAL(
        tg_guard_redact(gs, text, strlen(text), h.v, h.n, R(1), &out), TG_OK);
    CU_ASSERT_STRING_EQUAL(out.data, "a [CANARY] b [CANARY]");
    h.n = 0;
    CU_ASSERT_EQUAL(
        tg_guard_scan(gs, sc, OUT, ALL, NULL, text, strlen(text), &h), TG_OK);
    CU_ASSERT_EQUAL(h.n, 0); /* no canary given: nothing to leak */
    CU_ASSERT_EQUAL(
        tg_guard_scan(gs, sc, IN, ALL, "CANARY-7f3a9c", text, strlen(text), &h),
        TG_OK);
    CU_ASSERT_EQUAL(h.n, 0); /* the rule runs at output only */
    tg_buf_fini(&out);
    tg_guard_hits_fini(&h);
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

/* ---- streams ---------------------------------------------------------- */

/* Narrow detectors, so that the hold-back is well under the text's length
 * and every split point below lands before, inside and after matches. */
static const char *const stream_spec =
    "{'rules':["
    "{'id':'card','patterns':[{'name':'card',"
    "'regex':'\\\\b[0-9](?:[ -]?[0-9]){11,18}\\\\b','validator':'luhn',"
    "'type':'CARD'}],'action':'redact'},"
    "{'id':'words','terms':['caf\xc3\xa9','new york','york city'],"
    "'action':'redact','mask':'<{type}>'},"
    "{'id':'rivals','stages':['output'],'lists':['competitors'],"
    "'action':'audit'},"
    "{'id':'emp','patterns':[{'name':'employee_id','regex':'EMP-[0-9]{6}'}],"
    "'action':'redact'},"
    "{'id':'leak','canary':true,'action':'redact','mask':'[CANARY]'}],"
    "'lists':{'competitors':{'terms':['Acme Corp','globex']}}}";

static const char *const stream_text =
    "Dear Zo\xc3\xab, pay 4111 1111 1111 1111 by Friday, not "
    "x4111 1111 1111 1111. The Caf\xc3\xa9 (no supercaf\xc3\xa9) in "
    "New York City is Acme Corp's, not GLOBEX's. Ref EMP-123456; "
    "CANARY-7f3a9c here. 1234 5678 9012 3456 fails Luhn. Zo\xc3\xab's "
    "caf\xc3\xa9-bar sells cafeteria food \xe2\x82\xac"
    "5. Bye!";

#define CANARY "CANARY-7f3a9c"
#define REDACT (R(0) | R(1) | R(3) | R(4))

/* The block-mode answer a stream must give. */
typedef struct expect {
    tg_buf        out;
    tg_guard_hits hits;
    size_t        hold;
    size_t        widest; /* the longest hit */
} expect;

static void
expect_make(const tg_guard_set *gs, tg_guard_scratch *sc, const char *text,
            size_t len, expect *ex)
{
    tg_buf_init(&ex->out, 0);
    memset(&ex->hits, 0, sizeof(ex->hits));
    CU_ASSERT_EQUAL_FATAL(
        tg_guard_scan(gs, sc, OUT, ALL, CANARY, text, len, &ex->hits), TG_OK);
    CU_ASSERT_EQUAL_FATAL(tg_guard_redact(gs, text, len, ex->hits.v, ex->hits.n,
                                          REDACT, &ex->out),
                          TG_OK);
    ex->hold   = tg_guard_set_holdback(gs, ALL, strlen(CANARY));
    ex->widest = 0;
    for (size_t i = 0; i < ex->hits.n; i++) {
        size_t w   = ex->hits.v[i].end - ex->hits.v[i].start;
        ex->widest = w > ex->widest ? w : ex->widest;
    }
}

static void
expect_fini(expect *ex)
{
    tg_buf_fini(&ex->out);
    tg_guard_hits_fini(&ex->hits);
}

/* stream_run feeds text cut at the given points and checks the stream's
 * answer against ex, and what it holds after every feed. */
static bool
stream_run(const tg_guard_set *gs, tg_guard_scratch *sc, const char *text,
           size_t len, const size_t *cuts, size_t ncuts, const expect *ex)
{
    tg_guard_stream *st = NULL;
    tg_guard_hits    h  = {0};
    tg_buf           out;
    bool             ok = true;
    size_t           at = 0;

    tg_buf_init(&out, 0);
    if (tg_guard_stream_create(&st, gs, ALL, REDACT, CANARY) != TG_OK) {
        return false;
    }
    for (size_t i = 0; i <= ncuts && ok; i++) {
        size_t next = i < ncuts ? cuts[i] : len;
        ok = tg_guard_stream_feed(st, sc, text + at, next - at, i == ncuts,
                                  &out, &h) == TG_OK;
        at = next;
        /* Never more held than the hold-back and a match pending, and
         * never half a character out. */
        ok = ok && tg_guard_stream_held(st) <= ex->hold + ex->widest + 6;
        ok = ok && tg_utf8_valid(out.data ? out.data : "", out.len) == out.len;
    }
    ok = ok && tg_guard_stream_held(st) == 0 && out.len == ex->out.len &&
         memcmp(out.data, ex->out.data, out.len) == 0 && h.n == ex->hits.n &&
         memcmp(h.v, ex->hits.v, h.n * sizeof(*h.v)) == 0;
    if (!ok) {
        fprintf(stderr, "cuts");
        for (size_t i = 0; i < ncuts; i++) {
            fprintf(stderr, " %zu", cuts[i]);
        }
        fprintf(stderr, ": got \"%s\" (%zu hits), held %zu\n",
                out.data ? out.data : "", h.n, tg_guard_stream_held(st));
    }
    tg_guard_stream_destroy(st);
    tg_buf_fini(&out);
    tg_guard_hits_fini(&h);
    return ok;
}

/* Every way to cut the text into two and three chunks, and one byte at a
 * time, gives the block scan's answer. */
static void
test_stream_splits(void)
{
    tg_guard_set     *gs  = compile_ok(stream_spec);
    tg_guard_scratch *sc  = tg_guard_scratch_create();
    size_t            len = strlen(stream_text);
    size_t            bad = 0;
    size_t            cuts[512];
    expect            ex;
    char              got[2048];

    expect_make(gs, sc, stream_text, len, &ex);
    render(gs, &ex.hits, got, sizeof(got));
    /* One of each kind, and near misses ("x4111...", "supercafé"), so
     * that the splits try them all. */
    CU_ASSERT_STRING_EQUAL(got, "card/custom.card@15-34 words/terms@76-81 "
                                "words/terms@101-114 "
                                "rivals/list.competitors@118-127 "
                                "rivals/list.competitors@135-141 "
                                "emp/custom.employee_id@149-159 "
                                "leak/injection.canary_leak@161-174 "
                                "words/terms@220-225");
    CU_ASSERT(ex.hold < len / 2);
    for (size_t i = 0; i <= len && bad < 5; i++) {
        cuts[0] = i;
        bad += !stream_run(gs, sc, stream_text, len, cuts, 1, &ex);
        for (size_t j = i; j <= len && bad < 5; j++) {
            cuts[1] = j;
            bad += !stream_run(gs, sc, stream_text, len, cuts, 2, &ex);
        }
    }
    for (size_t i = 0; i + 1 < len; i++) {
        cuts[i] = i + 1;
    }
    bad += !stream_run(gs, sc, stream_text, len, cuts, len - 1, &ex);
    CU_ASSERT_EQUAL(bad, 0);
    expect_fini(&ex);
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

/* The wide built-in detectors too, over a long text cut at pseudo-random
 * points (the hold-back of pii.email is hundreds of bytes). */
static void
test_stream_chunks(void)
{
    tg_guard_set *gs = compile_ok(
        "{'rules':[{'id':'card','detectors':['pii.email','pii.card'],"
        "'action':'redact'},"
        "{'id':'words','terms':['caf\xc3\xa9','new york','york city'],"
        "'action':'redact','mask':'<{type}>'},"
        "{'id':'rivals','lists':['competitors'],'action':'audit'},"
        "{'id':'emp','patterns':[{'name':'employee_id','regex':"
        "'EMP-[0-9]{6}'}],'action':'redact'},"
        "{'id':'leak','canary':true,'action':'redact','mask':'[CANARY]'}],"
        "'lists':{'competitors':{'terms':['Acme Corp','globex']}}}");
    tg_guard_scratch *sc = tg_guard_scratch_create();
    tg_buf            text;
    size_t            cuts[4096];
    uint32_t          seed = 12345;
    size_t            bad  = 0;
    expect            ex;

    tg_buf_init(&text, 0);
    for (int i = 0; i < 12; i++) {
        tg_buf_addf(&text, "%s Mail bob.smith%d@example.com now. ", stream_text,
                    i);
    }
    CU_ASSERT_EQUAL_FATAL(tg_buf_error(&text), TG_OK);
    expect_make(gs, sc, text.data, text.len, &ex);
    CU_ASSERT(ex.hits.n >= 12 * 8);
    CU_ASSERT(ex.hold < text.len / 4);
    for (int round = 0; round < 200 && bad < 5; round++) {
        size_t n = 0;
        for (size_t at = 0;;) {
            seed = seed * 1103515245u + 12345u;
            at += 1 + (seed >> 16) % (round < 100 ? 40 : 700);
            if (at >= text.len || n == 4096) {
                break;
            }
            cuts[n++] = at;
        }
        bad += !stream_run(gs, sc, text.data, text.len, cuts, n, &ex);
    }
    CU_ASSERT_EQUAL(bad, 0);
    expect_fini(&ex);
    tg_buf_fini(&text);
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

/* Text that cannot match is released up to the hold-back at once; a
 * match that crosses that point is held from its start; a feed after the
 * last one fails. */
static void
test_stream_release(void)
{
    tg_guard_set     *gs = compile_ok(stream_spec);
    tg_guard_scratch *sc = tg_guard_scratch_create();
    tg_guard_stream  *st = NULL;
    tg_guard_hits     h  = {0};
    size_t            L  = tg_guard_set_holdback(gs, R(0) | R(1), 0);
    char              text[600];
    char              got[256];
    tg_buf            out;

    tg_buf_init(&out, 0);
    memset(text, 0, sizeof(text));
    for (size_t i = 0; i + 1 < sizeof(text); i++) {
        text[i] = "the quick brown fox jumps over a lazy dog "[i % 42];
    }
    CU_ASSERT_FATAL(L > 20 && L < 300);
    CU_ASSERT_EQUAL_FATAL(
        tg_guard_stream_create(&st, gs, R(0) | R(1), R(0) | R(1), NULL), TG_OK);
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, text, 300, false, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL(out.len, 300 - L);
    CU_ASSERT_EQUAL(tg_guard_stream_held(st), L);
    CU_ASSERT_EQUAL(
        tg_guard_stream_feed(st, sc, text + 300, 10, false, &out, &h), TG_OK);
    CU_ASSERT_EQUAL(out.len, 310 - L);
    /* A card at [311, 330), then text up to where the hold-back would cut
     * it at 320: everything before the card goes out, the card stays. */
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, " 4111 1111 1111 1111", 20,
                                         false, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL(
        tg_guard_stream_feed(st, sc, text + 3, L - 10, false, &out, &h), TG_OK);
    CU_ASSERT_EQUAL(out.len, 311);
    CU_ASSERT_EQUAL(tg_guard_stream_held(st), L + 9);
    CU_ASSERT_EQUAL(h.n, 0);
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, " ok", 3, true, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL(tg_guard_stream_held(st), 0);
    CU_ASSERT_EQUAL(out.len, 311 + strlen("[REDACTED:CARD]") + L - 10 + 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, " [REDACTED:CARD] quick"));
    render(gs, &h, got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "card/custom.card@311-330");
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, "x", 1, true, &out, &h),
                    TG_ECLOSED);
    tg_guard_stream_destroy(st);
    tg_buf_fini(&out);
    tg_guard_hits_fini(&h);
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

/* The canary is caught when chunks cut it anywhere. */
static void
test_stream_canary(void)
{
    tg_guard_set *gs =
        compile_ok("{'rules':[{'id':'leak','canary':true,'action':'block'}]}");
    tg_guard_scratch *sc   = tg_guard_scratch_create();
    const char       *text = "ab " CANARY " cd";
    size_t            len  = strlen(text);

    for (size_t i = 0; i <= len; i++) {
        tg_guard_stream *st = NULL;
        tg_guard_hits    h  = {0};
        tg_buf           out;
        tg_buf_init(&out, 0);
        CU_ASSERT_EQUAL_FATAL(tg_guard_stream_create(&st, gs, ALL, 0, CANARY),
                              TG_OK);
        CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, text, i, false, &out, &h),
                        TG_OK);
        CU_ASSERT_EQUAL(
            tg_guard_stream_feed(st, sc, text + i, len - i, true, &out, &h),
            TG_OK);
        CU_ASSERT_EQUAL(h.n, 1);
        CU_ASSERT(h.n == 1 && h.v[0].start == 3 && h.v[0].end == 16);
        CU_ASSERT_STRING_EQUAL(out.data, text); /* block: nothing masked */
        tg_guard_stream_destroy(st);
        tg_buf_fini(&out);
        tg_guard_hits_fini(&h);
    }
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

/* With nothing to hold back, everything goes out at once but the start
 * of a character still to come. */
static void
test_stream_no_holdback(void)
{
    tg_guard_set *gs =
        compile_ok("{'rules':[{'id':'short','output':{'max_length':100}}]}");
    tg_guard_scratch *sc = tg_guard_scratch_create();
    tg_guard_stream  *st = NULL;
    tg_guard_hits     h  = {0};
    tg_buf            out;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL(tg_guard_set_holdback(gs, ALL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(tg_guard_stream_create(&st, gs, ALL, 0, NULL), TG_OK);
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, "ab\xe2", 3, false, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL(out.len, 2);
    CU_ASSERT_EQUAL(tg_guard_stream_held(st), 1);
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, "\x82", 1, false, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL(out.len, 2);
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, "\xac!", 2, false, &out, &h),
                    TG_OK);
    CU_ASSERT_STRING_EQUAL(out.data, "ab\xe2\x82\xac!");
    /* A byte that can start nothing is not waited for; at the end, a cut
     * character goes out as it is. */
    CU_ASSERT_EQUAL(
        tg_guard_stream_feed(st, sc, "\xff\xc3", 2, false, &out, &h), TG_OK);
    CU_ASSERT_EQUAL(out.len, 7);
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, NULL, 0, true, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL(out.len, 8);
    CU_ASSERT_EQUAL(h.n, 0);
    tg_guard_stream_destroy(st);
    tg_buf_fini(&out);
    tg_guard_hits_fini(&h);
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

/* max_length counts bytes as they come and hits once. */
static void
test_stream_max_length(void)
{
    tg_guard_set *gs =
        compile_ok("{'rules':[{'id':'short','output':{'max_length':10}}]}");
    tg_guard_scratch *sc = tg_guard_scratch_create();
    tg_guard_stream  *st = NULL;
    tg_guard_hits     h  = {0};
    tg_buf            out;

    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL_FATAL(tg_guard_stream_create(&st, gs, ALL, 0, NULL), TG_OK);
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, "0123456", 7, false, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL(h.n, 0);
    CU_ASSERT_EQUAL(out.len, 7); /* nothing to hold back for */
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, "789", 3, false, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL(h.n, 0); /* 10 bytes: not past it */
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, "ab", 2, false, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL_FATAL(h.n, 1);
    CU_ASSERT_EQUAL(h.v[0].detector, det_of(gs, "shape.max_length"));
    CU_ASSERT_EQUAL(h.v[0].start, 10);
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, "cd", 2, true, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL(h.n, 1);
    tg_guard_stream_destroy(st);
    tg_buf_fini(&out);
    tg_guard_hits_fini(&h);
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

/* A chain of overlapping candidates (numbers counted with spaces chain
 * card candidates) is not held without end. */
static void
test_stream_chain(void)
{
    tg_guard_set     *gs   = compile_ok(stream_spec);
    tg_guard_scratch *sc   = tg_guard_scratch_create();
    tg_guard_stream  *st   = NULL;
    tg_guard_hits     h    = {0};
    size_t            L    = tg_guard_set_holdback(gs, R(0), 0);
    size_t            most = 0;
    tg_buf            text;
    tg_buf            out;

    tg_buf_init(&text, 0);
    tg_buf_init(&out, 0);
    for (int i = 0; i < 2000; i++) {
        tg_buf_addf(&text, "%d ", i % 10);
    }
    CU_ASSERT_EQUAL_FATAL(tg_guard_stream_create(&st, gs, R(0), 0, NULL),
                          TG_OK);
    for (size_t at = 0; at < text.len; at += 10) {
        size_t n = text.len - at < 10 ? text.len - at : 10;
        CU_ASSERT_EQUAL_FATAL(
            tg_guard_stream_feed(st, sc, text.data + at, n, false, &out, &h),
            TG_OK);
        most =
            tg_guard_stream_held(st) > most ? tg_guard_stream_held(st) : most;
    }
    CU_ASSERT(most > L); /* the chain was held past the hold-back */
    CU_ASSERT(most <= L + TG_GUARD_WIDTH_MAX + 16);
    CU_ASSERT_EQUAL(tg_guard_stream_feed(st, sc, NULL, 0, true, &out, &h),
                    TG_OK);
    CU_ASSERT_EQUAL(out.len, text.len); /* nothing masked: it is all there */
    tg_guard_stream_destroy(st);
    tg_buf_fini(&text);
    tg_buf_fini(&out);
    tg_guard_hits_fini(&h);
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

/* ---- output shape ------------------------------------------------------ */

static const char *const shape_spec =
    "{'rules':["
    "{'id':'json','stages':['output'],'output':{'json':true}},"
    "{'id':'schema','stages':['output'],'output':{'schema':{"
    "'$schema':'https://json-schema.org/draft/2020-12/schema',"
    "'type':'object','required':['name','age'],"
    "'properties':{'name':{'type':'string','minLength':1,'maxLength':10},"
    "'age':{'type':['integer','null'],'minimum':0,'maximum':150},"
    "'tags':{'type':'array','maxItems':2,'items':{'enum':['a','b']}},"
    "'kind':{'const':'person'}},"
    "'additionalProperties':false}}},"
    "{'id':'len','stages':['output'],'output':{'max_length':64}}]}";

typedef struct shcase {
    const char *name;
    const char *text;
    const char *want; /* the failing rules, space-separated */
    const char *why;  /* a piece of the first failure */
} shcase;

static const shcase shcases[] = {
    {"a good answer", "{\"name\":\"Zo\xc3\xab\",\"age\":30}", "", ""},
    {"whitespace around it", " \n{\"name\":\"Zo\xc3\xab\",\"age\":null}\r\n ",
     "", ""},
    {"bytes after the value", "{\"name\":\"Zo\",\"age\":3} x", "json schema",
     "not valid JSON (byte 22)"},
    {"a cut answer", "[1,2", "json schema", "not valid JSON"},
    {"no answer", "", "json schema", "not valid JSON (byte 0)"},
    {"valid JSON, wrong shape", "[1]", "schema", "expected type \"object\""},
    {"a field missing", "{\"name\":\"Zo\"}", "schema", "\"age\" is missing"},
    {"a float for an integer", "{\"name\":\"Zo\",\"age\":30.5}", "schema",
     "$.age: expected type"},
    {"a field not allowed", "{\"name\":\"Zo\",\"age\":3,\"x\":1}", "schema",
     "\"x\" is not allowed"},
    {"a value not in the enum",
     "{\"name\":\"Zo\",\"age\":3,\"tags\":[\"a\",\"c\"]}", "schema",
     "$.tags[1]: not one of the allowed values"},
    {"too many items",
     "{\"name\":\"Zo\",\"age\":3,\"tags\":[\"a\",\"b\",\"a\"]}", "schema",
     "$.tags: 3 items"},
    {"too short a string", "{\"name\":\"\",\"age\":3}", "schema",
     "$.name: 0 characters"},
    {"characters, not bytes",
     "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\",\"age\":3}",
     "", ""},
    {"a number out of range", "{\"name\":\"Zo\",\"age\":200}", "schema",
     "$.age: 200 is outside"},
    {"not the const", "{\"name\":\"Zo\",\"age\":3,\"kind\":\"robot\"}",
     "schema", "$.kind: not the required value"},
    {"too long",
     "{\"name\":\"Zo\",\"age\":3}                                "
     "              ",
     "len", "more than max_length 64"},
    {NULL, NULL, NULL, NULL},
};

static void
test_shape(void)
{
    tg_guard_set *gs = compile_ok(shape_spec);

    for (const shcase *c = shcases; c->name != NULL; c++) {
        tg_guard_hits h = {0};
        char          why[512];
        char          got[256] = "";
        size_t        o        = 0;
        CU_ASSERT_EQUAL(tg_guard_shape_check(gs, ALL, c->text, strlen(c->text),
                                             &h, why, sizeof(why)),
                        TG_OK);
        for (size_t i = 0; i < h.n; i++) {
            o +=
                (size_t)snprintf(got + o, sizeof(got) - o, "%s%s", i ? " " : "",
                                 tg_guard_set_rule_id(gs, h.v[i].rule));
        }
        if (strcmp(got, c->want) != 0 || strstr(why, c->why) == NULL) {
            fprintf(stderr, "case \"%s\": got \"%s\" why \"%s\"\n", c->name,
                    got, why);
            CU_FAIL(c->name);
        }
        tg_guard_hits_fini(&h);
    }
    tg_guard_set_unref(gs);
}

/* Where a shape hit points, and that the mask picks the checks. */
static void
test_shape_hits(void)
{
    tg_guard_set *gs   = compile_ok(shape_spec);
    const char   *text = "{\"name\":\"Zo\",\"age\":3} x";
    tg_guard_hits h    = {0};

    CU_ASSERT_EQUAL(
        tg_guard_shape_check(gs, R(0) | R(2), text, strlen(text), &h, NULL, 0),
        TG_OK);
    CU_ASSERT_EQUAL_FATAL(h.n, 1);
    CU_ASSERT_EQUAL(h.v[0].detector, det_of(gs, "shape.json"));
    CU_ASSERT_EQUAL(h.v[0].start, 22); /* the x */
    CU_ASSERT_EQUAL(h.v[0].end, 22);
    h.n = 0;
    CU_ASSERT_EQUAL(
        tg_guard_shape_check(gs, 0, text, strlen(text), &h, NULL, 0), TG_OK);
    CU_ASSERT_EQUAL(h.n, 0);
    tg_guard_hits_fini(&h);
    tg_guard_set_unref(gs);
}

/* ---- threads ---------------------------------------------------------- */

typedef struct worker {
    const tg_guard_set *gs;
    const expect       *ex;
    const char         *text;
    size_t              len;
    int                 bad;
} worker;

static void *
worker_run(void *arg)
{
    worker           *w  = arg;
    tg_guard_scratch *sc = tg_guard_scratch_create();

    for (int i = 0; i < 200; i++) {
        tg_guard_hits h = {0};
        w->bad += tg_guard_scan(w->gs, sc, OUT, ALL, CANARY, w->text, w->len,
                                &h) != TG_OK ||
                  h.n != w->ex->hits.n ||
                  memcmp(h.v, w->ex->hits.v, h.n * sizeof(*h.v)) != 0;
        tg_guard_hits_fini(&h);
    }
    tg_guard_scratch_destroy(sc);
    return NULL;
}

/* One set, scanned by several threads at once, each with its scratch. */
static void
test_threads(void)
{
    tg_guard_set     *gs = compile_ok(stream_spec);
    tg_guard_scratch *sc = tg_guard_scratch_create();
    pthread_t         t[4];
    worker            w[4];
    expect            ex;

    expect_make(gs, sc, stream_text, strlen(stream_text), &ex);
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){gs, &ex, stream_text, strlen(stream_text), 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, worker_run, &w[i]),
                              0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(w[i].bad, 0);
    }
    expect_fini(&ex);
    tg_guard_scratch_destroy(sc);
    tg_guard_set_unref(gs);
}

int
main(void)
{
    static const tg_unit_case all[] = {
        {"compile_errors", test_compile_errors},
        {"rule_limit", test_rule_limit},
        {"detector_table", test_detector_table},
        {"scan", test_scan},
        {"redact", test_redact},
        {"redact_refuses", test_redact_refuses},
        {"match_at_the_end", test_match_at_the_end},
        {"big_list", test_big_list},
        {"canary", test_canary},
        {"stream_splits", test_stream_splits},
        {"stream_chunks", test_stream_chunks},
        {"stream_release", test_stream_release},
        {"stream_canary", test_stream_canary},
        {"stream_no_holdback", test_stream_no_holdback},
        {"stream_max_length", test_stream_max_length},
        {"stream_chain", test_stream_chain},
        {"shape", test_shape},
        {"shape_hits", test_shape_hits},
        {"threads", test_threads},
        {NULL, NULL},
    };
    return tg_unit_run("common.guard", all);
}
