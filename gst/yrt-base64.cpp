/* Base64 encoding and strict decoding, table-driven: the audio's encoding in
 * both directions (see yrt-base64.h). */
#include "yrt-base64.h"

#include <cstring>

namespace yrt {

namespace {

const char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encoding looks up 12 bits at a time: two characters per lookup. */
struct EncodeTable {
  char pair[4096][2];
  EncodeTable ()
  {
    for (int i = 0; i < 4096; i++) {
      pair[i][0] = kAlphabet[i >> 6];
      pair[i][1] = kAlphabet[i & 63];
    }
  }
};
const EncodeTable kEncode;

struct DecodeTable {
  gint8 value[256];
  DecodeTable ()
  {
    memset (value, -1, sizeof (value));
    for (int i = 0; i < 64; i++)
      value[(guint8) kAlphabet[i]] = (gint8) i;
  }
};
const DecodeTable kDecode;

}  // namespace

void base64_encode_append (const guint8 *in, gsize size, std::string &out)
{
  gsize pos = out.size ();
  out.resize (pos + (size + 2) / 3 * 4);
  char *o = &out[pos];
  gsize i = 0;
  for (; i + 3 <= size; i += 3, o += 4) {
    guint32 v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
    memcpy (o, kEncode.pair[v >> 12], 2);
    memcpy (o + 2, kEncode.pair[v & 0xfff], 2);
  }
  if (i < size) {
    guint32 v = in[i] << 16;
    if (i + 1 < size)
      v |= in[i + 1] << 8;
    *o++ = kAlphabet[v >> 18];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
}

/* Padding may only end the last quantum ("xx==", "xxx="); every other
 * character must be in the alphabet. */
bool base64_decode (const char *text, gsize size, std::vector<guint8> &out)
{
  out.clear ();
  if (size % 4 != 0)
    return false;
  if (size == 0)
    return true;
  const gint8 *table = kDecode.value;
  const guint8 *q = (const guint8 *) text;
  const guint8 *last = q + size - 4;
  int pad = (last[3] == '=') + (last[2] == '=' && last[3] == '=');
  out.resize (size / 4 * 3 - pad);
  guint8 *o = out.data ();
  for (; q < last; q += 4, o += 3) {
    gint32 a = table[q[0]], b = table[q[1]], c = table[q[2]], d = table[q[3]];
    if ((a | b | c | d) < 0) {
      out.clear ();
      return false;
    }
    guint32 v = ((guint32) a << 18) | ((guint32) b << 12) | ((guint32) c << 6) | (guint32) d;
    o[0] = (guint8) (v >> 16);
    o[1] = (guint8) (v >> 8);
    o[2] = (guint8) v;
  }
  guint32 v = 0;
  for (int k = 0; k < 4 - pad; k++) {
    gint8 d = table[last[k]];
    if (d < 0) {
      out.clear ();
      return false;
    }
    v |= (guint32) d << (18 - 6 * k);
  }
  o[0] = (guint8) (v >> 16);
  if (pad < 2)
    o[1] = (guint8) (v >> 8);
  if (pad < 1)
    o[2] = (guint8) v;
  return true;
}

}  // namespace yrt
