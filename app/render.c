/* render.c -- response bodies built from a status snapshot (see render.h).
 *
 * JSON is built with jansson, never by hand, so strings from files (policy
 * errors, paths, reasons) are always escaped correctly.  jansson refuses a
 * string that is not valid UTF-8, and such a string would fail the whole
 * document: every string that is not one of our own constant names goes in
 * through text_json(), which replaces ill-formed bytes with U+FFFD.
 * /governor is indented for people; /governor/history, polled every second
 * by the live page, is compact. */
#include "render.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "common.h"

/* A JSON string of foreign bytes: well-formed UTF-8 as it is, anything
 * else repaired.  NULL only when out of memory. */
static json_t *text_json(const char *s)
{
    char *clean;
    json_t *j;
    if (!s)
        s = "";
    if (gov_utf8_valid(s, strlen(s)))
        return json_string(s);
    clean = gov_utf8_sanitize(s);
    if (!clean)
        return NULL;
    j = json_string(clean);
    free(clean);
    return j;
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? text_json(s) : json_null();
}

static json_t *time_json(int64_t wall_ms)
{
    char buf[32];
    if (wall_ms <= 0)
        return json_null();
    app_format_rfc3339(wall_ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *ratio_json(double r)
{
    return isfinite(r) ? json_real(r) : json_null();
}

static void add_policy_value(const char *section, const char *key, const char *value, void *ud)
{
    json_t *values = ud, *sec = json_object_get(values, section);
    if (!sec) {
        sec = json_object();
        json_object_set_new(values, section, sec);
    }
    json_object_set_new(sec, key, text_json(value));
}

static json_t *decision_json(const struct gov_decision *d)
{
    return json_pack("{s:I, s:o, s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "seq",
                     (json_int_t)d->seq, "time", time_json(d->wall_ms), "level",
                     gov_level_name(d->level), "from", gov_level_name(d->from), "action",
                     gov_action_name(d->action), "dry_run", d->dry_run, "usage_bytes",
                     (json_int_t)d->usage, "limit_bytes", (json_int_t)d->limit,
                     "released_bytes", (json_int_t)d->released, "would_release_bytes",
                     (json_int_t)d->would_release, "buffer_after_bytes",
                     (json_int_t)d->buffer_after, "repeat", (json_int_t)d->repeat, "reason",
                     text_json(d->reason));
}

static json_int_t at(double fraction, uint64_t limit)
{
    return (json_int_t)((long double)fraction * (long double)limit);
}

/* "counter": the store, its state and its errors by reason. */
static json_t *counter_json(const struct counter_status *cs)
{
    json_t *errors, *o;
    if (!cs)
        return json_null();
    errors = json_object();
    for (int i = 0; i < COUNTER_NERRORS; i++)
        json_object_set_new(errors, counter_error_name((enum counter_error)i),
                            json_integer((json_int_t)cs->errors[i]));
    o = json_pack("{s:s, s:o, s:b, s:o, s:I, s:o}", "store", counter_kind_name(cs->kind),
                  "target", text_json(cs->target), "up", cs->up, "error", str_or_null(cs->error),
                  "last_value", (json_int_t)cs->last, "errors", errors);
    if (o && cs->kind == COUNTER_FILE)
        json_object_set_new(o, "lease", json_pack("{s:I, s:I, s:I, s:I}", "high_water_mark",
                                                  (json_int_t)cs->lease_limit, "size",
                                                  (json_int_t)cs->lease_size, "writes",
                                                  (json_int_t)cs->lease_writes, "waits",
                                                  (json_int_t)cs->lease_waits));
    return o ? o : json_null();
}

char *render_governor_json(const struct gov_status *st, const struct app_info *app,
                           const struct counter_status *cs, size_t *len)
{
    const struct gov_cgroup_sample *s = &st->sample;
    const struct gov_policy *p = &st->policy;
    const struct gov_counters *c = &st->counters;
    json_t *root, *decisions, *values, *pressure;
    char *out;

    values = json_object();
    gov_status_policy_foreach(st, add_policy_value, values);

    decisions = json_array();
    for (unsigned i = 0; i < st->ndecisions; i++)
        json_array_append_new(decisions, decision_json(&st->decisions[i]));

    pressure = s->has_psi
                   ? json_pack("{s:f, s:f, s:f, s:f, s:I, s:I}", "some_avg10", s->psi.some_avg10,
                               "some_avg60", s->psi.some_avg60, "full_avg10", s->psi.full_avg10,
                               "full_avg60", s->psi.full_avg60, "some_total_usec",
                               (json_int_t)s->psi.some_total, "full_total_usec",
                               (json_int_t)s->psi.full_total)
                   : json_null();

    root = json_pack(
        "{s:s, s:s, s:s, s:o, s:I,"
        " s:{s:b, s:o, s:I, s:s, s:o, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I,"
        "    s:{s:I, s:I, s:I, s:I, s:I}, s:o, s:I, s:I},"
        " s:{s:I, s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I},"
        " s:{s:s, s:o, s:o},"
        " s:{s:o, s:I, s:o, s:o, s:o},"
        " s:{s:I, s:I, s:I, s:I, s:o, s:o},"
        " s:o, s:{s:o, s:o, s:o}, s:o}",
        "version", app->version, "level", gov_level_name(st->level), "mode",
        gov_mode_name(p->mode), "started_at", time_json(st->started_wall_ms), "ticks",
        (json_int_t)c->ticks,
        /* memory */
        "memory", "readable", st->sample_ok, "error", str_or_null(st->sample_error),
        "limit_bytes", (json_int_t)st->limit, "limit_source",
        gov_limit_source_name(st->limit_source), "limit_file",
        str_or_null(st->limit_source == GOV_LIMIT_CGROUP ? s->limit_file : NULL), "usage_bytes",
        (json_int_t)st->usage, "signal", gov_signal_name(p->signal), "current_bytes",
        (json_int_t)s->current, "working_set_bytes", (json_int_t)s->working_set,
        "inactive_file_bytes", (json_int_t)s->inactive_file, "anon_bytes",
        (json_int_t)s->anon, "file_bytes", (json_int_t)s->file, "peak_bytes",
        (json_int_t)s->peak, "ratio", ratio_json(st->ratio), "oom_kills",
        (json_int_t)s->oom_kills, "events", "low", (json_int_t)s->events_low, "high",
        (json_int_t)s->events_high, "max", (json_int_t)s->events_max, "oom",
        (json_int_t)s->events_oom, "oom_kill", (json_int_t)s->oom_kills, "pressure", pressure,
        "host_memtotal_bytes", (json_int_t)s->host_memtotal, "host_available_bytes",
        (json_int_t)s->host_available,
        /* thresholds in bytes, for people and the page */
        "thresholds", "target_bytes", at(p->target, st->limit), "soft_bytes",
        at(p->soft, st->limit), "high_bytes", at(p->high, st->limit), "critical_bytes",
        at(p->critical, st->limit),
        /* buffer */
        "buffer", "bytes", (json_int_t)st->buffer_bytes, "blocks",
        (json_int_t)st->buffer_objects, "refused", (json_int_t)c->refused, "evictions",
        (json_int_t)c->evictions, "evicted_bytes", (json_int_t)c->evicted_bytes,
        "alloc_failures", (json_int_t)collector_alloc_failures(app->collector),
        /* cgroup */
        "cgroup", "version", gov_cg_version_name(st->cgroup.version), "path",
        text_json(st->cgroup.dir), "how", text_json(st->cgroup.how),
        /* policy */
        "policy", "source", text_json(st->policy_source), "generation",
        (json_int_t)st->policy_generation,
        "loaded_at", time_json(st->policy_loaded_wall_ms), "last_error",
        str_or_null(st->policy_error), "values", values,
        /* wake-ups */
        "wakeups", "timer", (json_int_t)c->wake_timer, "events", (json_int_t)c->wake_events,
        "pressure", (json_int_t)c->wake_pressure, "policy", (json_int_t)c->wake_policy,
        "events_watch", text_json(st->events_watch), "pressure_trigger",
        text_json(st->pressure_trigger),
        /* decisions and pod */
        "decisions", decisions, "pod", "name", str_or_null(app->pod_name), "namespace",
        str_or_null(app->pod_namespace), "node", str_or_null(app->node_name), "counter",
        counter_json(cs));
    if (!root)
        return NULL;
    /* the policy's identity, compared across pods (README, "Roll-outs") */
    if (json_object_set_new(json_object_get(root, "policy"), "sha256",
                            json_string(st->policy_sha256)) < 0) {
        json_decref(root);
        return NULL;
    }
    out = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (out && len)
        *len = strlen(out);
    return out;
}

/* ---- /governor/history ---------------------------------------------------- */

static int parse_decimal(const char *name, const char *s, uint64_t max, uint64_t *out, char *err,
                         size_t errlen)
{
    uint64_t v = 0;
    *out = 0;
    if (!s)
        return 0;
    if (!*s || strlen(s) > 20)
        goto bad;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9' || v > (max - (uint64_t)(*c - '0')) / 10)
            goto bad;
        v = v * 10 + (uint64_t)(*c - '0');
    }
    *out = v;
    return 0;
bad:
    snprintf(err, errlen, "%s: expected a decimal number from 0 to %llu", name,
             (unsigned long long)max);
    return -1;
}

int render_history_query(const char *since, const char *after_seq, struct history_query *q,
                         char *err, size_t errlen)
{
    uint64_t v;
    memset(q, 0, sizeof(*q));
    if (parse_decimal("since", since, INT64_MAX, &v, err, errlen) < 0)
        return -1;
    q->since_ms = (int64_t)v;
    return parse_decimal("after_seq", after_seq, UINT64_MAX, &q->after_seq, err, errlen);
}

static json_t *bytes_or_null(bool ok, uint64_t v)
{
    return ok ? json_integer((json_int_t)v) : json_null();
}

static json_t *sample_json(const struct gov_history_sample *h)
{
    return json_pack("{s:I, s:b, s:s, s:I, s:o, s:o, s:o, s:o}", "time_ms", (json_int_t)h->wall_ms,
                     "ok", h->ok, "level", gov_level_name((enum gov_level)h->level),
                     "limit_bytes", (json_int_t)h->limit, "usage_bytes",
                     bytes_or_null(h->ok, h->usage), "working_set_bytes",
                     bytes_or_null(h->ok, h->working_set), "current_bytes",
                     bytes_or_null(h->ok, h->current), "buffer_bytes",
                     bytes_or_null(h->ok, h->buffer));
}

char *render_history_json(const struct gov_status *st, const struct gov_history_sample *samples,
                          unsigned nsamples, const struct history_query *q, int64_t now_ms,
                          const struct app_info *app, size_t *len)
{
    const struct gov_policy *p = &st->policy;
    json_t *root, *jsamples, *decisions;
    char *out;

    jsamples = json_array();
    decisions = json_array();
    if (!jsamples || !decisions) {
        json_decref(jsamples);
        json_decref(decisions);
        return NULL;
    }
    for (unsigned i = 0; i < nsamples; i++)
        if (json_array_append_new(jsamples, sample_json(&samples[i])) < 0)
            goto oom;
    for (unsigned i = 0; i < st->ndecisions; i++) {
        const struct gov_decision *d = &st->decisions[i];
        json_t *j;
        if (d->seq <= q->after_seq && d->wall_ms <= q->since_ms)
            continue;
        j = decision_json(d);
        if (j && json_object_set_new(j, "time_ms", json_integer((json_int_t)d->wall_ms)) < 0) {
            json_decref(j);
            j = NULL;
        }
        if (json_array_append_new(decisions, j) < 0) /* also fails for j == NULL */
            goto oom;
    }

    root = json_pack(
        "{s:s, s:I, s:I, s:I, s:i, s:s, s:s,"
        " s:{s:b, s:o, s:I, s:s, s:s, s:I, s:I, s:I, s:o},"
        " s:I,"
        " s:{s:f, s:f, s:f, s:f, s:f},"
        " s:{s:s, s:o},"
        " s:{s:o, s:I, s:o, s:o},"
        " s:{s:o, s:o},"
        " s:o, s:o}",
        "version", app->version, "now_ms", (json_int_t)now_ms, "started_at_ms",
        (json_int_t)st->started_wall_ms, "period_ms",
        (json_int_t)MAX((uint32_t)GOV_HISTORY_PERIOD_MS, p->interval_ms), "capacity",
        GOV_HISTORY_SIZE, "level", gov_level_name(st->level), "mode", gov_mode_name(p->mode),
        /* memory now */
        "memory", "readable", st->sample_ok, "error", str_or_null(st->sample_error),
        "limit_bytes", (json_int_t)st->limit, "limit_source",
        gov_limit_source_name(st->limit_source), "signal", gov_signal_name(p->signal),
        "usage_bytes", (json_int_t)st->usage, "working_set_bytes",
        (json_int_t)st->sample.working_set, "current_bytes", (json_int_t)st->sample.current,
        "ratio", ratio_json(st->ratio),
        "buffer_bytes", (json_int_t)st->buffer_bytes,
        /* the current policy's lines, as fractions of the limit */
        "thresholds", "target", p->target, "soft", p->soft, "high", p->high, "critical",
        p->critical, "hysteresis", p->hysteresis,
        "cgroup", "version", gov_cg_version_name(st->cgroup.version), "how",
        text_json(st->cgroup.how),
        "policy", "source", text_json(st->policy_source), "generation",
        (json_int_t)st->policy_generation,
        "loaded_at", time_json(st->policy_loaded_wall_ms), "last_error",
        str_or_null(st->policy_error),
        "pod", "name", str_or_null(app->pod_name), "namespace", str_or_null(app->pod_namespace),
        "samples", jsamples, "decisions", decisions);
    if (!root)
        return NULL; /* json_pack's "o" consumed jsamples and decisions */
    out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (out && len)
        *len = strlen(out);
    return out;
oom:
    json_decref(jsamples);
    json_decref(decisions);
    return NULL;
}
