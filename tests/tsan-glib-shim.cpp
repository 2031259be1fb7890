/* LD_PRELOAD shim for ThreadSanitizer runs against Debian's uninstrumented
 * GLib and GStreamer (tests/run.sh, ThreadSanitizer pass).
 *
 * TSan sees only what is compiled with it or goes through its interceptors.
 * GLib's GMutex, GRecMutex, GRWLock and GCond sit on raw futexes; reference
 * counts are inline atomics; GMainContext and GAsyncQueue hand data between
 * threads under GLib's own locks.  So every hand-off through them (a buffer
 * pushed by one thread and popped by another, a task joined, a callback run
 * on the network thread) would be reported as a race.  The wrappers below
 * call the real functions and tell TSan about the happens-before they
 * provide.  Calls from other libraries (GStreamer, GIO, libsoup, gst-check)
 * and from our code go through the PLT and land here; GLib's calls to itself
 * do not, which is why tests/tsan.supp also ignores the interceptors GLib
 * calls (called_from_lib).  Nothing here changes behaviour.
 *
 * Built by tests/meson.build only with -Db_sanitize=thread. */
#include <dlfcn.h>
#include <glib-object.h>
#include <glib.h>
#include <sanitizer/tsan_interface.h>

/* The real function, looked up once (atomically: any thread may be first). */
#define REAL(name, ret, ...)                                                  \
  static ret (*real_##name##_cache) (__VA_ARGS__);                            \
  ret (*real_##name) (__VA_ARGS__) =                                          \
      __atomic_load_n (&real_##name##_cache, __ATOMIC_ACQUIRE);               \
  if (!real_##name) {                                                         \
    real_##name = (ret (*) (__VA_ARGS__)) dlsym (RTLD_NEXT, #name);           \
    __atomic_store_n (&real_##name##_cache, real_##name, __ATOMIC_RELEASE);   \
  }

typedef struct _GstMiniObject GstMiniObject;

extern "C" {

/* ---- locks: unlock happens before the next lock ---- */

void g_mutex_lock (GMutex *m)
{
  REAL (g_mutex_lock, void, GMutex *);
  real_g_mutex_lock (m);
  __tsan_acquire (m);
}

gboolean g_mutex_trylock (GMutex *m)
{
  REAL (g_mutex_trylock, gboolean, GMutex *);
  gboolean locked = real_g_mutex_trylock (m);
  if (locked)
    __tsan_acquire (m);
  return locked;
}

void g_mutex_unlock (GMutex *m)
{
  REAL (g_mutex_unlock, void, GMutex *);
  __tsan_release (m);
  real_g_mutex_unlock (m);
}

void g_rec_mutex_lock (GRecMutex *m)
{
  REAL (g_rec_mutex_lock, void, GRecMutex *);
  real_g_rec_mutex_lock (m);
  __tsan_acquire (m);
}

gboolean g_rec_mutex_trylock (GRecMutex *m)
{
  REAL (g_rec_mutex_trylock, gboolean, GRecMutex *);
  gboolean locked = real_g_rec_mutex_trylock (m);
  if (locked)
    __tsan_acquire (m);
  return locked;
}

void g_rec_mutex_unlock (GRecMutex *m)
{
  REAL (g_rec_mutex_unlock, void, GRecMutex *);
  __tsan_release (m);
  real_g_rec_mutex_unlock (m);
}

void g_rw_lock_writer_lock (GRWLock *l)
{
  REAL (g_rw_lock_writer_lock, void, GRWLock *);
  real_g_rw_lock_writer_lock (l);
  __tsan_acquire (l);
}

void g_rw_lock_writer_unlock (GRWLock *l)
{
  REAL (g_rw_lock_writer_unlock, void, GRWLock *);
  __tsan_release (l);
  real_g_rw_lock_writer_unlock (l);
}

void g_rw_lock_reader_lock (GRWLock *l)
{
  REAL (g_rw_lock_reader_lock, void, GRWLock *);
  real_g_rw_lock_reader_lock (l);
  __tsan_acquire (l);
}

void g_rw_lock_reader_unlock (GRWLock *l)
{
  REAL (g_rw_lock_reader_unlock, void, GRWLock *);
  __tsan_release (l);
  real_g_rw_lock_reader_unlock (l);
}

/* A wait unlocks and relocks the mutex. */
void g_cond_wait (GCond *c, GMutex *m)
{
  REAL (g_cond_wait, void, GCond *, GMutex *);
  __tsan_release (m);
  real_g_cond_wait (c, m);
  __tsan_acquire (m);
}

gboolean g_cond_wait_until (GCond *c, GMutex *m, gint64 end_time)
{
  REAL (g_cond_wait_until, gboolean, GCond *, GMutex *, gint64);
  __tsan_release (m);
  gboolean signalled = real_g_cond_wait_until (c, m, end_time);
  __tsan_acquire (m);
  return signalled;
}

/* ---- reference counts: every unref releases and acquires what earlier
 * unrefs released, so the last one (which finalizes) comes after every use
 * by a thread that dropped its reference.  (GStreamer's own internal unrefs
 * bypass this; they are covered by called_from_lib in tests/tsan.supp.) ---- */

void g_object_unref (gpointer object)
{
  REAL (g_object_unref, void, gpointer);
  __tsan_release (object);
  __tsan_acquire (object);
  real_g_object_unref (object);
}

void gst_object_unref (gpointer object)
{
  REAL (gst_object_unref, void, gpointer);
  __tsan_release (object);
  __tsan_acquire (object);
  real_gst_object_unref (object);
}

void gst_mini_object_unref (GstMiniObject *object)
{
  REAL (gst_mini_object_unref, void, GstMiniObject *);
  __tsan_release (object);
  __tsan_acquire (object);
  real_gst_mini_object_unref (object);
}

/* ---- GMainContext: what a thread did before attaching an idle or timeout
 * source happens before the source's callback runs (on the network thread,
 * for Connection::send, call_later and stop). ---- */

guint g_source_attach (GSource *source, GMainContext *context)
{
  REAL (g_source_attach, guint, GSource *, GMainContext *);
  __tsan_release (source);
  return real_g_source_attach (source, context);
}

namespace {
struct Trampoline {
  GSourceFunc func;
  gpointer data;
  GDestroyNotify notify;
};

gboolean trampoline_call (gpointer data)
{
  auto *t = static_cast<Trampoline *> (data);
  if (GSource *source = g_main_current_source ())
    __tsan_acquire (source);
  return t->func (t->data);
}

void trampoline_free (gpointer data)
{
  auto *t = static_cast<Trampoline *> (data);
  if (t->notify)
    t->notify (t->data);
  g_free (t);
}
}  // namespace

void g_source_set_callback (GSource *source, GSourceFunc func, gpointer data,
    GDestroyNotify notify)
{
  REAL (g_source_set_callback, void, GSource *, GSourceFunc, gpointer, GDestroyNotify);
  /* Only idle and timeout sources call a plain GSourceFunc. */
  if (!func || (source->source_funcs != &g_idle_funcs &&
          source->source_funcs != &g_timeout_funcs)) {
    real_g_source_set_callback (source, func, data, notify);
    return;
  }
  auto *t = g_new (Trampoline, 1);
  t->func = func;
  t->data = data;
  t->notify = notify;
  real_g_source_set_callback (source, trampoline_call, t, trampoline_free);
}

/* ---- GAsyncQueue (GstHarness hands buffers and events to the test through
 * them): a push happens before the pop that returns its item. ---- */

void g_async_queue_push (GAsyncQueue *q, gpointer item)
{
  REAL (g_async_queue_push, void, GAsyncQueue *, gpointer);
  __tsan_release (q);
  real_g_async_queue_push (q, item);
}

void g_async_queue_push_front (GAsyncQueue *q, gpointer item)
{
  REAL (g_async_queue_push_front, void, GAsyncQueue *, gpointer);
  __tsan_release (q);
  real_g_async_queue_push_front (q, item);
}

gpointer g_async_queue_pop (GAsyncQueue *q)
{
  REAL (g_async_queue_pop, gpointer, GAsyncQueue *);
  gpointer item = real_g_async_queue_pop (q);
  __tsan_acquire (q);
  return item;
}

gpointer g_async_queue_try_pop (GAsyncQueue *q)
{
  REAL (g_async_queue_try_pop, gpointer, GAsyncQueue *);
  gpointer item = real_g_async_queue_try_pop (q);
  __tsan_acquire (q);
  return item;
}

gpointer g_async_queue_timeout_pop (GAsyncQueue *q, guint64 timeout)
{
  REAL (g_async_queue_timeout_pop, gpointer, GAsyncQueue *, guint64);
  gpointer item = real_g_async_queue_timeout_pop (q, timeout);
  __tsan_acquire (q);
  return item;
}

}  // extern "C"
