#include "yrt-formats.h"

#include <algorithm>
#include <cctype>

namespace yrt {

namespace {
std::string lower (std::string s)
{
  std::transform (s.begin (), s.end (), s.begin (), [] (unsigned char c) { return std::tolower (c); });
  return s;
}

bool has (const std::string &text, const char *part)
{
  return text.find (part) != std::string::npos;
}
}  // namespace

/* OpenAI: param "session.audio.output.format.rate", message "Invalid
 * 'session.audio.output.format.rate': …"; beta-era names say
 * "output_audio_format". */
bool names_format (const ServerError &error, bool output)
{
  const char *side = output ? "output" : "input";
  std::string param = lower (error.param);
  if (!param.empty ())
    return has (param, side) && (has (param, "format") || has (param, "rate"));
  std::string message = lower (error.message);
  return has (message, output ? "audio.output.format" : "audio.input.format") ||
      has (message, output ? "output_audio_format" : "input_audio_format") ||
      (has (message, side) && has (message, "rate"));
}

void ServiceFormats::configure (guint input_rate, guint output_rate)
{
  asked_input_ = input_rate;
  asked_output_ = output_rate;
  served_output_ = accepted_input_ = 0;
}

void ServiceFormats::reported (const AudioFormat &input, const AudioFormat &output)
{
  accepted_input_ = input.rate;
  served_output_ = output.rate;
}

std::optional<RateRefusal> ServiceFormats::refused (const ServerError &error)
{
  if (names_format (error, true) && asked_output_ != kDocumentedOutputRate) {
    RateRefusal r {true, asked_output_, kDocumentedOutputRate};
    asked_output_ = kDocumentedOutputRate;
    served_output_ = 0;
    return r;
  }
  if (names_format (error, false) && asked_input_ != kDocumentedInputRate) {
    RateRefusal r {false, asked_input_, kDocumentedInputRate};
    asked_input_ = kDocumentedInputRate;
    accepted_input_ = 0;
    return r;
  }
  return std::nullopt;
}

}  // namespace yrt
