/* The audio-delta scanner (see yrt-audio-delta.h): one flat JSON object of
 * plain strings and scalars, `delta` decoded as base64; anything else is
 * left to json-glib. */
#include "yrt-audio-delta.h"

#include "yrt-base64.h"

#include <cstring>

namespace yrt {

namespace {

struct Span {
  const char *data = nullptr;
  gsize size = 0;
};

enum Member { kType, kEventId, kItemId, kPreviousItemId, kResponseId, kDelta, kMembers };

int member_index (const Span &key)
{
  static const char *const names[kMembers] = {
    "type", "event_id", "item_id", "previous_item_id", "response_id", "delta",
  };
  for (int i = 0; i < kMembers; i++)
    if (strlen (names[i]) == key.size && memcmp (names[i], key.data, key.size) == 0)
      return i;
  return -1;
}

bool is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A string without escapes, control or non-ASCII characters.  With `check`
 * false the characters are left to the caller: the delta's are all checked
 * by base64_decode(), which accepts none of those. */
bool scan_string (const char *&p, const char *end, Span &out, bool check)
{
  if (p == end || *p != '"')
    return false;
  const char *start = ++p;
  const char *close = static_cast<const char *> (memchr (start, '"', end - start));
  if (!close)
    return false;
  if (check)
    for (const char *c = start; c < close; c++)
      if ((guint8) *c < 0x20 || (guint8) *c >= 0x7f || *c == '\\')
        return false;
  out = {start, (gsize) (close - start)};
  p = close + 1;
  return true;
}

bool scan_digits (const char *&p, const char *end)
{
  const char *first = p;
  while (p < end && g_ascii_isdigit (*p))
    p++;
  return p > first;
}

/* true, false, null or a JSON number short enough for any parser. */
bool scan_scalar (const char *&p, const char *end)
{
  for (const char *word : {"true", "false", "null"}) {
    gsize n = strlen (word);
    if ((gsize) (end - p) >= n && memcmp (p, word, n) == 0) {
      p += n;
      return true;
    }
  }
  const char *q = p;
  if (q < end && *q == '-')
    q++;
  if (q < end && *q == '0')
    q++;
  else if (q == end || *q < '1' || *q > '9' || !scan_digits (q, end))
    return false;
  if (q < end && *q == '.' && !scan_digits (++q, end))
    return false;
  if (q < end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < end && (*q == '+' || *q == '-'))
      q++;
    if (!scan_digits (q, end))
      return false;
  }
  if (q - p > 15)
    return false;
  p = q;
  return true;
}

}  // namespace

bool parse_audio_delta (const char *data, gsize size, ServerEvent &ev)
{
  const char *p = data, *end = data + size;
  auto skip_space = [&] {
    while (p < end && is_space (*p))
      p++;
  };
  Span values[kMembers];
  guint seen = 0, strings = 0;
  skip_space ();
  if (p == end || *p++ != '{')
    return false;
  for (;;) {
    skip_space ();
    Span key;
    if (!scan_string (p, end, key, true) || key.size == 0)
      return false;
    skip_space ();
    if (p == end || *p++ != ':')
      return false;
    skip_space ();
    int member = member_index (key);
    if (member >= 0) {
      if (seen & (1u << member))
        return false;  /* json-glib keeps the last one; rare enough to leave */
      seen |= 1u << member;
    }
    if (p < end && *p == '"') {
      Span value;
      if (!scan_string (p, end, value, member != kDelta))
        return false;
      if (member >= 0) {
        values[member] = value;
        strings |= 1u << member;
      }
    } else if (member == kType || member == kDelta || !scan_scalar (p, end)) {
      return false;
    }
    skip_space ();
    if (p == end)
      return false;
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p++ != '}')
      return false;
    break;
  }
  skip_space ();
  if (p != end || !(strings & (1u << kType)) || !(strings & (1u << kDelta)))
    return false;
  const Span &type = values[kType];
  auto type_is = [&type] (const char *name) {
    return strlen (name) == type.size && memcmp (name, type.data, type.size) == 0;
  };
  if (!type_is ("response.output_audio.delta") && !type_is ("response.audio.delta"))
    return false;
  ev = ServerEvent ();
  /* An escape in the delta (say "\/") fails here and goes to json-glib. */
  if (!base64_decode (values[kDelta].data, values[kDelta].size, ev.audio))
    return false;
  ev.type = EventType::AudioDelta;
  ev.type_name.assign (type.data, type.size);
  auto take = [&] (Member m, std::string &out) {
    if (strings & (1u << m))
      out.assign (values[m].data, values[m].size);
  };
  take (kEventId, ev.event_id);
  take (kItemId, ev.item_id);
  take (kPreviousItemId, ev.previous_item_id);
  take (kResponseId, ev.response_id);
  return true;
}

}  // namespace yrt
