/* log.h -- one structured line per event.
 *
 * Every log call names an event ("start", "level_change", "shrink",
 * "reload", "error" ...), a human message, and optional fields given as a
 * jansson pack format ("{s:s, s:I}").  The line is written in one of three
 * forms:
 *
 *   json     one JSON object per line on stderr (default):
 *            {"time":"...","level":"info","event":"shrink","msg":"...",...}
 *            time is RFC 3339 UTC with milliseconds, level the severity
 *            (debug, info, warning, error); a field named like one of these
 *            four keys is written as field_<name> instead of replacing it
 *   text     "TIME LEVEL event: msg key=value ..." for people (values with
 *            spaces quoted, control characters escaped: one event, one line)
 *   journal  sd_journal_sendv() with MESSAGE=, PRIORITY=, SYSLOG_IDENTIFIER=,
 *            GOVERNOR_EVENT= and every field as GOVERNOR_<KEY> (upper-cased;
 *            a key that already starts with governor_ is not prefixed twice);
 *            when the journal socket cannot be reached the line goes to
 *            stderr as JSON instead, so it is never lost
 *
 * The format and threshold are process-wide and set once by gov_log_setup()
 * before any thread starts; logging itself is thread-safe (one write(2) per
 * line, one datagram per journal entry). */
#ifndef GOVERNOR_LOG_H
#define GOVERNOR_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include "governor.h" /* gov_log(), gov_log_setup(), gov_log_format_parse() */

#endif
