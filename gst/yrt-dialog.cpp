/* Dialog: the facade that wires a Session to its Conversation. */
#include "yrt-dialog.h"

namespace yrt {

std::string endpoint_url (const std::string &location, const std::string &folder_id,
    const std::string &model)
{
  gsize query = location.find ('?');
  if (query != std::string::npos) {
    std::string params = "&" + location.substr (query + 1);
    if (params.find ("&model=") != std::string::npos)
      return location;
  }
  std::string uri = folder_id.empty () ? model : "gpt://" + folder_id + "/" + model;
  return location + (query == std::string::npos ? "?" : "&") + "model=" + uri;
}

/* The session tells the conversation; the conversation sends through the
 * session.  Only references are taken here: neither is used before both
 * are built. */
Dialog::Dialog (DialogHost &host, Playout &playout, GstObject *log_object)
    : session_ (host, playout, log_object, conversation_),
      conversation_ (session_, host, playout, log_object)
{
}

Dialog::~Dialog ()
{
  close ();
}

/* The old session is closed before the conversation starts afresh, so no
 * event of it reaches the new books. */
void Dialog::open (const Endpoint &endpoint, const SessionConfig &config,
    const DialogOptions &options)
{
  session_.close ();
  conversation_.reset (options);
  session_.open (endpoint, config, options);
}

void Dialog::set_flushing (bool flushing)
{
  std::lock_guard<std::mutex> guard (session_.lock ());
  session_.set_flushing_locked (flushing);
  if (flushing)
    conversation_.flushed_locked ();
}

DialogStats Dialog::stats () const
{
  std::lock_guard<std::mutex> guard (session_.lock ());
  DialogStats s = session_.stats_locked ();
  conversation_.add_stats_locked (s);
  return s;
}

}  // namespace yrt
