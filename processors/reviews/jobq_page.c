/*  jobq_page.c: schema.org reviews out of HTML with libxml2 and jansson.

    Trees are walked iteratively (no recursion over the document), JSON-LD
    recursively but at most JOBQ_REVIEWS_LD_DEPTH deep, and every step on
    either counts against the page's JOBQ_REVIEWS_MAX_STEPS.
*/
#include "jobq_page.h"

#include <jansson.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_HTML_OPTIONS                                                         \
    (HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |            \
     HTML_PARSE_RECOVER)

typedef struct {
    jobq_page_t *page;   //  being filled
    size_t max_reviews;  //  reviews to take from the page
    long steps;          //  work left
    int err;             //  first JOBQ_ENOMEM
} s_ctx_t;

static bool
s_step(s_ctx_t *c)
{
    if (c->steps <= 0) {
        c->page->cut = true;
        return false;
    }
    c->steps--;
    return true;
}

//  A number out of text ("4", " 4.5 ", "4,5"), finite.
static bool
s_parse_number(const char *s, double *v)
{
    char buf[64];
    size_t n = 0;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    for (; *s && n < sizeof buf - 1; s++)
        buf[n++] = *s == ',' ? (char) '.' : *s;
    if (*s)
        return false;
    while (n && strchr(" \t\n\r", buf[n - 1]))
        n--;
    buf[n] = '\0';
    if (n == 0)
        return false;
    char *end = NULL;
    double d = strtod(buf, &end);
    if (*end || !isfinite(d))
        return false;
    *v = d;
    return true;
}

//  Take r into the page (or drop it when the page has enough).
static void
s_take(s_ctx_t *c, jobq_review_t *r)
{
    jobq_page_t *p = c->page;
    bool empty = !r->author && !r->title && !r->body && !r->has_rating;
    if (empty || c->err || p->count >= c->max_reviews) {
        if (!empty && !c->err)
            p->cut = true;
        jobq_review_clear(r);
        return;
    }
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        jobq_review_t *a = realloc(p->reviews, cap * sizeof *a);
        if (!a) {
            c->err = JOBQ_ENOMEM;
            jobq_review_clear(r);
            return;
        }
        p->reviews = a;
        p->cap = cap;
    }
    p->reviews[p->count++] = *r;
    memset(r, 0, sizeof *r);
}

//  --- JSON-LD ---------------------------------------------------------------

//  The last part of a type name: "http://schema.org/Review" -> "Review".
static const char *
s_type_tail(const char *t, size_t len, size_t *n)
{
    size_t i = len;
    while (i > 0 && t[i - 1] != '/' && t[i - 1] != ':' && t[i - 1] != '#')
        i--;
    *n = len - i;
    return t + i;
}

static bool
s_type_is(const char *t, size_t len, const char *const *names)
{
    size_t n;
    const char *tail = s_type_tail(t, len, &n);
    for (; *names; names++)
        if (strlen(*names) == n && memcmp(tail, *names, n) == 0)
            return true;
    return false;
}

static const char *const s_review_types[] = {"Review", "UserReview",
                                             "CriticReview", NULL};
static const char *const s_aggregate_types[] = {"AggregateRating", NULL};

static bool
s_ld_is(json_t *o, const char *const *names)
{
    json_t *t = json_object_get(o, "@type");
    if (json_is_string(t))
        return s_type_is(json_string_value(t), json_string_length(t), names);
    if (json_is_array(t)) {
        size_t i;
        json_t *v;
        json_array_foreach(t, i, v)
        {
            if (i >= 16)
                break;
            if (json_is_string(v) &&
                s_type_is(json_string_value(v), json_string_length(v), names))
                return true;
        }
    }
    return false;
}

//  Text of a JSON-LD value: a string, a number, an object's name, or the
//  first of an array.
static char *
s_ld_text(s_ctx_t *c, json_t *v, size_t max, jobq_text_mode_t mode)
{
    for (int hops = 0; v && hops < 4; hops++) {
        if (json_is_array(v))
            v = json_array_get(v, 0);
        else if (json_is_object(v))
            v = json_object_get(v, "name");
        else
            break;
    }
    if (json_is_string(v))
        return jobq_review_text(json_string_value(v), json_string_length(v),
                                max, mode, &c->err);
    if (json_is_number(v)) {
        //  As written: an integer whole, a real in its shortest exact form.
        char buf[JOBQ_MP_NUMBER_LEN];
        if (json_is_integer(v))
            snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        else
            jobq_mp_format_double(json_real_value(v), buf);
        return jobq_review_text(buf, strlen(buf), max, mode, &c->err);
    }
    return NULL;
}

static bool
s_ld_number(json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return isfinite(*out);
    }
    return json_is_string(v) && s_parse_number(json_string_value(v), out);
}

//  The first of keys that o has, or NULL.
static json_t *
s_ld_get(json_t *o, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(o, *keys);
        if (v && !json_is_null(v))
            return v;
    }
    return NULL;
}

static void
s_ld_review(s_ctx_t *c, json_t *o)
{
    static const char *const author[] = {"author", "creator", NULL};
    static const char *const date[] = {"datePublished", "dateCreated", NULL};
    static const char *const title[] = {"name", "headline", NULL};
    static const char *const body[] = {"reviewBody", "description", "text",
                                       NULL};
    jobq_review_t r;
    memset(&r, 0, sizeof r);
    r.author = s_ld_text(c, s_ld_get(o, author), JOBQ_REVIEW_MAX_AUTHOR,
                         JOBQ_TEXT_LINE);
    r.date =
        s_ld_text(c, s_ld_get(o, date), JOBQ_REVIEW_MAX_DATE, JOBQ_TEXT_LINE);
    r.title =
        s_ld_text(c, s_ld_get(o, title), JOBQ_REVIEW_MAX_TITLE, JOBQ_TEXT_LINE);
    json_t *b = s_ld_get(o, body);
    if (json_is_string(b))
        r.body =
            jobq_review_text(json_string_value(b), json_string_length(b),
                             JOBQ_REVIEW_MAX_BODY, JOBQ_TEXT_KEEP, &c->err);
    json_t *rr = json_object_get(o, "reviewRating");
    json_t *holder = json_is_object(rr) ? rr : o;
    double value, best = 5;
    json_t *vv = json_is_object(rr) ? json_object_get(rr, "ratingValue")
                 : rr               ? rr
                                    : json_object_get(o, "ratingValue");
    json_t *bv = json_object_get(holder, "bestRating");
    if (s_ld_number(vv, &value) && (!bv || s_ld_number(bv, &best)) &&
        jobq_review_rating_ok(value, best)) {
        r.rating = value;
        r.best_rating = best;
        r.has_rating = true;
    }
    s_take(c, &r);
}

static void
s_ld_aggregate(s_ctx_t *c, json_t *o)
{
    jobq_page_t *p = c->page;
    if (p->has_aggregate)
        return;
    jobq_aggregate_t a = {.best = 5};
    double d;
    a.has_value = s_ld_number(json_object_get(o, "ratingValue"), &a.value);
    json_t *cnt = json_object_get(o, "reviewCount");
    if (!cnt)
        cnt = json_object_get(o, "ratingCount");
    if (s_ld_number(cnt, &d) && d >= 0 && d < 1e15) {
        a.has_count = true;
        a.count = (int64_t) d;
    }
    if (s_ld_number(json_object_get(o, "bestRating"), &d) && d > 0 && d <= 1000)
        a.best = d;
    if (a.has_value || a.has_count) {
        p->aggregate = a;
        p->has_aggregate = true;
    }
}

//  Walk v for reviews and an aggregate rating. in_list: v is (an item of)
//  a `review` list, where objects without a @type are reviews too.
static void
s_ld_walk(s_ctx_t *c, json_t *v, int depth, bool in_list)
{
    if (depth > JOBQ_REVIEWS_LD_DEPTH || !s_step(c) || c->err)
        return;
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            s_ld_walk(c, item, depth + 1, in_list);
        }
        return;
    }
    if (!json_is_object(v))
        return;
    if (s_ld_is(v, s_review_types) ||
        (in_list && !json_object_get(v, "@type"))) {
        s_ld_review(c, v);
        return;
    }
    if (s_ld_is(v, s_aggregate_types)) {
        s_ld_aggregate(c, v);
        return;
    }
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (strcmp(key, "aggregateRating") == 0 && json_is_object(val))
            s_ld_aggregate(c, val);
        else if (json_is_object(val) || json_is_array(val))
            s_ld_walk(c, val, depth + 1,
                      strcmp(key, "review") == 0 ||
                          strcmp(key, "reviews") == 0);
    }
}

//  --- the HTML tree ---------------------------------------------------------

//  The node after n in document order, staying under root; into n's
//  children only when descend.
static xmlNode *
s_next(const xmlNode *root, xmlNode *n, bool descend)
{
    if (descend && n->type == XML_ELEMENT_NODE && n->children)
        return n->children;
    while (n && n != root) {
        if (n->next)
            return n->next;
        n = n->parent;
    }
    return NULL;
}

static bool
s_is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->name &&
           strcmp((const char *) n->name, name) == 0;
}

//  An attribute's value; "" for one without a value, NULL if absent.
static const char *
s_attr(const xmlNode *n, const char *name)
{
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        if (!a->name || strcmp((const char *) a->name, name) != 0)
            continue;
        if (a->children && a->children->type == XML_TEXT_NODE &&
            a->children->content)
            return (const char *) a->children->content;
        return "";
    }
    return NULL;
}

//  Whether the white-space separated list holds tok.
static bool
s_has_token(const char *list, const char *tok, bool nocase)
{
    size_t n = strlen(tok);
    for (const char *p = list; *p;) {
        while (*p && strchr(" \t\n\r\f", *p))
            p++;
        const char *s = p;
        while (*p && !strchr(" \t\n\r\f", *p))
            p++;
        if ((size_t) (p - s) == n &&
            (nocase ? strncasecmp(s, tok, n) : strncmp(s, tok, n)) == 0)
            return true;
    }
    return false;
}

//  Whether n is a microdata item of one of names.
static bool
s_md_item_is(const xmlNode *n, const char *const *names)
{
    const char *type = s_attr(n, "itemtype");
    if (!type || !s_attr(n, "itemscope"))
        return false;
    for (const char *p = type; *p;) {
        while (*p && strchr(" \t\n\r\f", *p))
            p++;
        const char *s = p;
        while (*p && !strchr(" \t\n\r\f", *p))
            p++;
        if (p > s && s_type_is(s, (size_t) (p - s), names))
            return true;
    }
    return false;
}

static bool
s_is_block(const xmlNode *n)
{
    static const char *const blocks[] = {
        "p",       "div",        "li",     "ul",    "ol", "tr",
        "table",   "h1",         "h2",     "h3",    "h4", "h5",
        "h6",      "blockquote", "dd",     "dt",    "dl", "pre",
        "section", "article",    "header", "footer"};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
        if (s_is(n, blocks[i]))
            return true;
    return false;
}

typedef struct {
    char *buf;   //  collected text
    size_t len;  //  bytes in buf
    size_t cap;  //  bytes it may hold
} s_text_t;

static void
s_text_add(s_text_t *t, const char *s, size_t n)
{
    if (n > t->cap - t->len)
        n = t->cap - t->len;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

//  Text of the source: its line breaks are only white space.
static void
s_text_add_flow(s_text_t *t, const char *s, size_t n)
{
    if (n > t->cap - t->len)
        n = t->cap - t->len;
    for (size_t i = 0; i < n; i++)
        t->buf[t->len++] = s[i] == '\n' || s[i] == '\r' || s[i] == '\t' ||
                                   s[i] == '\f' || s[i] == '\v'
                               ? ' '
                               : s[i];
}

//  The text under root as a reader sees it: line breaks for <br> and
//  around blocks, no scripts or styles; tidied in mode, at most max bytes.
static char *
s_text(s_ctx_t *c, xmlNode *root, size_t max, jobq_text_mode_t mode)
{
    //  White space shrinks when tidied: collect up to four times max.
    s_text_t t = {malloc(4 * max + 64), 0, 4 * max + 64};
    if (!t.buf) {
        c->err = JOBQ_ENOMEM;
        return NULL;
    }
    xmlNode *n = root->children;
    while (n && t.len < t.cap && s_step(c)) {
        bool descend = true;
        if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) &&
            n->content)
            s_text_add_flow(&t, (const char *) n->content,
                            strlen((const char *) n->content));
        else if (s_is(n, "br"))
            s_text_add(&t, "\n", 1);
        else if (s_is(n, "script") || s_is(n, "style") || s_is(n, "template"))
            descend = false;
        else if (s_is_block(n))
            s_text_add(&t, "\n", 1);
        if (descend && n->type == XML_ELEMENT_NODE && n->children) {
            n = n->children;
            continue;
        }
        //  Leave n and the ancestors it ends, up to the next sibling.
        while (n && n != root) {
            if (s_is_block(n))
                s_text_add(&t, "\n", 1);
            if (n->next) {
                n = n->next;
                break;
            }
            n = n->parent;
        }
        if (n == root)
            break;
    }
    char *out = jobq_review_text(t.buf, t.len, max, mode, &c->err);
    free(t.buf);
    return out;
}

//  The first element under item with property name, not looking inside
//  items nested in item (their properties are theirs).
static xmlNode *
s_md_prop(s_ctx_t *c, xmlNode *item, const char *name)
{
    for (xmlNode *n = item->children; n && s_step(c);) {
        bool descend = true;
        if (n->type == XML_ELEMENT_NODE) {
            const char *prop = s_attr(n, "itemprop");
            if (prop && s_has_token(prop, name, false))
                return n;
            descend = !s_attr(n, "itemscope");
        }
        n = s_next(item, n, descend);
    }
    return NULL;
}

//  A property's value, as microdata defines it for the element.
static char *
s_md_value(s_ctx_t *c, xmlNode *n, size_t max, jobq_text_mode_t mode)
{
    static const struct {
        const char *element;  //  element name
        const char *attr;     //  the attribute holding its value
    } by_attr[] = {{"a", "href"},      {"area", "href"},    {"link", "href"},
                   {"img", "src"},     {"audio", "src"},    {"video", "src"},
                   {"source", "src"},  {"iframe", "src"},   {"embed", "src"},
                   {"track", "src"},   {"object", "data"},  {"data", "value"},
                   {"meter", "value"}, {"time", "datetime"}};
    const char *v = s_attr(n, "content");
    for (size_t i = 0; !v && i < sizeof by_attr / sizeof by_attr[0]; i++)
        if (s_is(n, by_attr[i].element))
            v = s_attr(n, by_attr[i].attr);
    if (v)
        return jobq_review_text(v, strlen(v), max, mode, &c->err);
    return s_text(c, n, max, mode);
}

//  The value of the first of the properties names of item, or NULL.
static char *
s_md_first(s_ctx_t *c,
           xmlNode *item,
           const char *const *names,
           size_t max,
           jobq_text_mode_t mode)
{
    for (; *names; names++) {
        xmlNode *p = s_md_prop(c, item, *names);
        if (p)
            return s_md_value(c, p, max, mode);
    }
    return NULL;
}

static bool
s_md_number(s_ctx_t *c, xmlNode *item, const char *name, double *out)
{
    const char *const names[] = {name, NULL};
    char *s = s_md_first(c, item, names, 64, JOBQ_TEXT_LINE);
    bool ok = s && s_parse_number(s, out);
    free(s);
    return ok;
}

static void
s_md_review(s_ctx_t *c, xmlNode *item)
{
    static const char *const date[] = {"datePublished", "dateCreated", NULL};
    static const char *const title[] = {"name", "headline", NULL};
    static const char *const body[] = {"reviewBody", "description", NULL};
    jobq_review_t r;
    memset(&r, 0, sizeof r);
    xmlNode *a = s_md_prop(c, item, "author");
    if (a && s_attr(a, "itemscope")) {
        xmlNode *name = s_md_prop(c, a, "name");
        r.author =
            name ? s_md_value(c, name, JOBQ_REVIEW_MAX_AUTHOR, JOBQ_TEXT_LINE)
                 : s_text(c, a, JOBQ_REVIEW_MAX_AUTHOR, JOBQ_TEXT_LINE);
    } else if (a) {
        r.author = s_md_value(c, a, JOBQ_REVIEW_MAX_AUTHOR, JOBQ_TEXT_LINE);
    }
    r.date = s_md_first(c, item, date, JOBQ_REVIEW_MAX_DATE, JOBQ_TEXT_LINE);
    r.title = s_md_first(c, item, title, JOBQ_REVIEW_MAX_TITLE, JOBQ_TEXT_LINE);
    r.body = s_md_first(c, item, body, JOBQ_REVIEW_MAX_BODY, JOBQ_TEXT_FLOW);
    xmlNode *rr = s_md_prop(c, item, "reviewRating");
    xmlNode *holder = rr && s_attr(rr, "itemscope") ? rr : item;
    double value = 0, best = 5;
    bool has = false;
    if (rr && holder == item) {
        char *s = s_md_value(c, rr, 64, JOBQ_TEXT_LINE);
        has = s && s_parse_number(s, &value);
        free(s);
    } else {
        has = s_md_number(c, holder, "ratingValue", &value);
    }
    double b;
    if (s_md_number(c, holder, "bestRating", &b))
        best = b;
    if (has && jobq_review_rating_ok(value, best)) {
        r.rating = value;
        r.best_rating = best;
        r.has_rating = true;
    }
    s_take(c, &r);
}

static void
s_md_aggregate(s_ctx_t *c, xmlNode *item)
{
    jobq_page_t *p = c->page;
    if (p->has_aggregate)
        return;
    jobq_aggregate_t a = {.best = 5};
    double d;
    a.has_value = s_md_number(c, item, "ratingValue", &a.value);
    if ((s_md_number(c, item, "reviewCount", &d) ||
         s_md_number(c, item, "ratingCount", &d)) &&
        d >= 0 && d < 1e15) {
        a.has_count = true;
        a.count = (int64_t) d;
    }
    if (s_md_number(c, item, "bestRating", &d) && d > 0 && d <= 1000)
        a.best = d;
    if (a.has_value || a.has_count) {
        p->aggregate = a;
        p->has_aggregate = true;
    }
}

static char *
s_dup_attr(s_ctx_t *c, const char *v)
{
    char *s = jobq_review_text(v, strlen(v), 4096, JOBQ_TEXT_KEEP, &c->err);
    return s;
}

//  The ld+json type: "application/ld+json", any case, maybe with
//  parameters.
static bool
s_is_ld_json(const xmlNode *n)
{
    const char *t = s_attr(n, "type");
    if (!t)
        return false;
    while (*t == ' ')
        t++;
    static const char want[] = "application/ld+json";
    size_t k = sizeof want - 1;
    return strncasecmp(t, want, k) == 0 &&
           (t[k] == '\0' || t[k] == ';' || t[k] == ' ');
}

//  libxml2's handler for errors without a parser context (bad bytes for
//  the declared encoding, for one), which HTML_PARSE_NOERROR does not
//  reach: a page's faults are not the worker's to log.
static void
s_quiet(void *ctx, const char *msg, ...)
{
    (void) ctx;
    (void) msg;
}

int
jobq_page_parse(jobq_page_t *page,
                const char *html,
                size_t len,
                const char *encoding,
                size_t max_reviews)
{
    memset(page, 0, sizeof *page);
    if (len > INT_MAX)
        return JOBQ_ETOOBIG;
    s_ctx_t c = {page,
                 max_reviews < JOBQ_REVIEWS_PER_PAGE ? max_reviews
                                                     : JOBQ_REVIEWS_PER_PAGE,
                 JOBQ_REVIEWS_MAX_STEPS, JOBQ_OK};
    htmlDocPtr doc = NULL;
    //  Per thread in libxml2: this silences only the calling slot.
    xmlSetGenericErrorFunc(NULL, s_quiet);
    if (len > 0) {
        doc = htmlReadMemory(html, (int) len, NULL, encoding, S_HTML_OPTIONS);
        if (!doc && encoding)  //  an encoding libxml2 does not know
            doc = htmlReadMemory(html, (int) len, NULL, NULL, S_HTML_OPTIONS);
    }
    if (!doc)
        return JOBQ_OK;
    //  One pass to find what matters, then the reviews: JSON-LD first.
    xmlNode *root = (xmlNode *) doc;
    xmlNode *scripts[JOBQ_REVIEWS_LD_BLOCKS];
    size_t nscripts = 0, nitems = 0, items_cap = 0;
    xmlNode **items = NULL;
    xmlNode *aggregate = NULL;
    for (xmlNode *n = root->children; n && s_step(&c) && !c.err;
         n = s_next(root, n, true)) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        const char *href = s_attr(n, "href");
        if (s_is(n, "script") && s_is_ld_json(n)) {
            if (nscripts < JOBQ_REVIEWS_LD_BLOCKS)
                scripts[nscripts++] = n;
            else
                page->cut = true;
        } else if ((s_is(n, "a") || s_is(n, "link")) && href && *href &&
                   !page->next && s_attr(n, "rel") &&
                   s_has_token(s_attr(n, "rel"), "next", true)) {
            page->next = s_dup_attr(&c, href);
        } else if (s_is(n, "base") && href && *href && !page->base) {
            page->base = s_dup_attr(&c, href);
        }
        if (s_md_item_is(n, s_review_types)) {
            if (nitems == items_cap) {
                size_t cap = items_cap ? items_cap * 2 : 16;
                xmlNode **a = cap <= JOBQ_REVIEWS_PER_PAGE
                                  ? realloc(items, cap * sizeof *a)
                                  : NULL;
                if (!a) {
                    page->cut = true;
                    continue;
                }
                items = a;
                items_cap = cap;
            }
            items[nitems++] = n;
        } else if (!aggregate && s_md_item_is(n, s_aggregate_types)) {
            aggregate = n;
        }
    }
    for (size_t i = 0; i < nscripts && !c.err && s_step(&c); i++) {
        xmlChar *text = xmlNodeGetContent(scripts[i]);
        if (!text)
            continue;
        page->ld_blocks++;
        json_error_t jerr;
        json_t *v = json_loadb((const char *) text, strlen((const char *) text),
                               0, &jerr);
        if (v)
            s_ld_walk(&c, v, 0, false);
        else
            page->ld_errors++;
        json_decref(v);
        xmlFree(text);
    }
    for (size_t i = 0; i < nitems && !c.err; i++)
        s_md_review(&c, items[i]);
    if (aggregate && !c.err)
        s_md_aggregate(&c, aggregate);
    free(items);
    xmlFreeDoc(doc);
    if (c.err) {
        jobq_page_clear(page);
        return c.err;
    }
    return JOBQ_OK;
}

void
jobq_page_clear(jobq_page_t *page)
{
    for (size_t i = 0; i < page->count; i++)
        jobq_review_clear(&page->reviews[i]);
    free(page->reviews);
    free(page->next);
    free(page->base);
    memset(page, 0, sizeof *page);
}
