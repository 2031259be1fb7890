/* Base64 (RFC 4648, standard alphabet, padded), table-driven for the hot
 * path: encoding every input_audio_buffer.append, decoding every
 * response.output_audio.delta. */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace yrt {

/* Strict base64 (RFC 4648 with padding); false on any invalid character or
 * length. */
bool base64_decode (const char *text, gsize size, std::vector<guint8> &out);
void base64_encode_append (const guint8 *data, gsize size, std::string &out);

}  // namespace yrt
