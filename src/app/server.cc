#include "app/server.h"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/signal_set.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sodium.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <latch>
#include <list>
#include <optional>
#include <thread>
#include <unordered_set>

#include "app/connection.h"
#include "app/control.h"
#include "app/file_watcher.h"
#include "app/notify.h"
#include "app/privileges.h"
#include "auth/verifier.h"
#include "delivery/deliverer.h"
#include "delivery/remote.h"
#include "delivery/srs.h"
#include "delivery/srs_secret.h"
#include "dns/configured.h"
#include "dkim/key_store.h"
#include "io/env.h"
#include "queue/queue.h"
#include "directory/directory_service.h"
#include "log/log.h"
#include "metrics/server_metrics.h"
#include "net/asio.h"
#include "smtp/server/context.h"
#include "protect/dnsbl.h"
#include "protect/greylist.h"
#include "protect/protector.h"
#include "spool/spool.h"
#include "tls/tls_context.h"
#include "util/fs.h"
#include "util/thread_name.h"

namespace postern::app {

using namespace std::chrono_literals;
using net::awaitable;
using net::tcp;

namespace {

constexpr auto kDirectoryPollInterval = 2s;     // fallback when inotify misses a change
constexpr auto kCertificatePollInterval = 60s;
constexpr auto kExpiryCheckInterval = 24h;
// New contexts get fresh random session-ticket keys: rebuilding them this often rotates
// the keys (in memory only) even when no certificate changes.
constexpr auto kTicketKeyRotation = 12h;
constexpr long kExpiryWarnDays = 30;
constexpr long kExpiryErrorDays = 7;
constexpr unsigned kCpuThreads = 2;
constexpr unsigned kDeliveryThreads = 2;
constexpr auto kAcceptRetryPause = 100ms;   // after EMFILE and the like
// Concurrent connections to metrics listeners (apart from server.max_connections).
constexpr size_t kMaxMetricsConnections = 32;

struct Worker {
  asio::io_context io{1};
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::unordered_set<Connection*> connections;   // touched only on this worker's thread
  std::thread thread;
};

// Names a pool's `threads` threads prefix0, prefix1, ...: one task per thread, each held until
// all have started, so no thread takes two of them. Returns once every thread is named.
void nameThreads(asio::thread_pool& pool, unsigned threads, const std::string& prefix) {
  // Shared: a task may still be returning from the wait when this function has returned.
  auto started = std::make_shared<std::latch>(threads + 1);
  for (unsigned i = 0; i < threads; ++i) {
    asio::post(pool, [i, started, prefix] {
      util::setThreadName(prefix + std::to_string(i));
      started->arrive_and_wait();
    });
  }
  started->arrive_and_wait();
}

}  // namespace

class Server {
 public:
  explicit Server(std::shared_ptr<const config::Config> cfg)
      : cfg_(std::move(cfg)), metrics_(cfg_->listeners, shutting_down_) {}
  int run();

 private:
  awaitable<void> acceptLoop(tcp::acceptor& acceptor, const config::Listener& listener);
  awaitable<void> handleSignals();
  awaitable<void> watchExpiry();
  void reloadCertificates(std::string_view why);
  void logExpiry();
  void beginShutdown();
  // The families read at scrape time from the spool, queue, protector and certificates.
  void registerCollectors();

  // Decides whether to drop root and prepares for it: resolves the service user and hands
  // it the data and mail folders. Sets target_ when a drop is due.
  Status preparePrivileges();
  // After the listeners are bound: starts the privileged reader and becomes the user.
  Status dropRoot();

  std::shared_ptr<const config::Config> cfg_;
  std::optional<Identity> target_;
  OwnershipChange owner_changes_;
  std::unique_ptr<PrivilegedReader> reader_;   // outlives every user of files()
  FileSource& files() { return reader_ ? static_cast<FileSource&>(*reader_) : directFiles(); }
  std::atomic<uint64_t> next_seq_{1};
  std::atomic<uint64_t> next_conn_{1};
  std::atomic<bool> shutting_down_{false};
  metrics::ServerMetrics metrics_;   // after shutting_down_, which it reads
  Counters& counters_ = metrics_.events();
  std::atomic<size_t> open_connections_{0};
  std::atomic<size_t> metrics_connections_{0};   // not in open_connections_: never delay the drain
  // Metrics listeners stay open while the server drains, so /readyz can be seen failing.
  std::unordered_set<const tcp::acceptor*> kept_open_;
  std::unique_ptr<tls::CertStore> certs_;
  std::unique_ptr<directory::DirectoryService> directory_;
  std::unique_ptr<spool::Spool> spool_;
  std::unique_ptr<queue::Queue> queue_;
  std::unique_ptr<delivery::QuotaUsage> quota_usage_;   // used by deliverer_ and the sessions
  std::unique_ptr<delivery::Deliverer> deliverer_;
  std::unique_ptr<dns::Resolver> resolver_;
  // Lookups of the SMTP sessions (SPF, DKIM, DMARC, ARC): a resolver of their own, since its
  // answers are posted to the workers' event loops and it must be gone before they are.
  std::unique_ptr<dns::Resolver> inbound_resolver_;
  std::unique_ptr<auth::ResolverDns> inbound_dns_;
  std::unique_ptr<auth::Verifier> verifier_;
  std::unique_ptr<delivery::RemoteDeliverer> remote_;
  std::unique_ptr<asio::thread_pool> cpu_pool_;
  std::unique_ptr<smtp::ServerContext> smtp_ctx_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<FileWatcher> directory_watcher_, cert_watcher_;
  std::unique_ptr<protect::Protector> protector_;
  std::unique_ptr<protect::Dnsbl> dnsbl_;
  std::unique_ptr<protect::Greylist> greylist_;   // null unless enabled
  std::shared_ptr<const delivery::Srs> srs_;   // null unless [srs] enabled
  std::unique_ptr<dkim::KeyStore> dkim_;   // loaded while still root (keys are often 0600 root)
  std::unique_ptr<ControlServer> control_;
  std::list<tcp::acceptor> acceptors_;
  // Made before the listeners are bound, so a signal sent as soon as a port answers is
  // queued for handleSignals, not fatal (its handler is installed here).
  std::unique_ptr<asio::signal_set> signals_;
  size_t next_worker_ = 0;
  std::thread shutdown_thread_;
};

awaitable<void> Server::acceptLoop(tcp::acceptor& acceptor, const config::Listener& listener) {
  for (;;) {
    Worker& w = *workers_[next_worker_++ % workers_.size()];
    auto [ec, sock] = co_await acceptor.async_accept(w.io, net::use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || shutting_down_) co_return;
      // EMFILE and friends: log, pause briefly, keep serving.
      log::error("net.accept_failed").kv("listener", listener.name).kv("reason", ec.message());
      asio::steady_timer t(acceptor.get_executor(), kAcceptRetryPause);
      co_await t.async_wait(net::use_nothrow);
      continue;
    }
    const bool http = listener.service->service == config::Service::kMetrics;
    std::atomic<size_t>& open = http ? metrics_connections_ : open_connections_;
    const size_t limit = http ? kMaxMetricsConnections : cfg_->server.max_connections;
    if (open.load() >= limit) {
      counters_.inc("net.max_connections");
      metrics_.listener(&listener).count(metrics::Outcome::kMaxConnections);
      log::warn("net.max_connections").kv("listener", listener.name).kv("limit", uint64_t(limit));
      std::error_code ignored;
      sock.close(ignored);
      continue;
    }
    ++open;
    uint64_t id = next_conn_++;
    Worker* wp = &w;
    asio::co_spawn(
        w.io,
        [this, wp, id, &listener, open = &open, s = std::move(sock)]() mutable -> awaitable<void> {
          Connection conn(*smtp_ctx_, std::move(s), listener, id);
          wp->connections.insert(&conn);
          co_await conn.run();
          wp->connections.erase(&conn);
          --*open;
        },
        asio::detached);
  }
}

// Runs on the CPU pool: building contexts reads files and parses keys.
void Server::reloadCertificates(std::string_view why) {
  if (!certs_) return;
  if (Status s = certs_->reload(); !s) {
    counters_.inc("tls.reload_failed");
    log::error("tls.reload_failed").kv("trigger", why).kv("reason", s.message()).kv("status", "kept_previous");
    return;
  }
  for (const auto& c : certs_->certificates())
    log::info("tls.reloaded").kv("trigger", why).kv("file", c.cert_path).kv("serial", c.serial_hex)
        .kv("days_left", int64_t(c.days_left));
}

// Once a day: a warning per certificate at <= 30 days left, an error at <= 7 (the metrics
// endpoint reads the figure at each scrape: postern_tls_certificate_expiry_seconds).
void Server::logExpiry() {
  if (!certs_) return;
  for (const auto& c : certs_->certificates()) {
    if (c.days_left <= kExpiryErrorDays)
      log::error("tls.expiry").kv("file", c.cert_path).kv("names", fmt::format("{}", fmt::join(c.names, ",")))
          .kv("days_left", int64_t(c.days_left)).kv("fix", "renew the certificate; Postern reloads it by itself");
    else if (c.days_left <= kExpiryWarnDays)
      log::warn("tls.expiry").kv("file", c.cert_path).kv("names", fmt::format("{}", fmt::join(c.names, ",")))
          .kv("days_left", int64_t(c.days_left)).kv("fix", "renew the certificate; Postern reloads it by itself");
  }
}

void Server::registerCollectors() {
  using metrics::Sink;
  using metrics::Type;
  metrics::Registry& r = metrics_.registry();
  r.collector("postern_queue_messages", "Messages owed delivery to at least one recipient.", Type::kGauge,
              [this](Sink& s) { s.sample({}, double(queue_->size())); });
  r.collector("postern_queue_recipients_total",
              "Recipient outcomes of delivery attempts: delivered, deferred (will be retried), bounced (failed for "
              "good, the sender is notified), expired (bounced because the queue lifetime passed).",
              Type::kCounter, [this](Sink& s) {
                queue::QueueStats st = queue_->stats();
                s.sample({{"outcome", "delivered"}}, double(st.delivered));
                s.sample({{"outcome", "deferred"}}, double(st.deferred));
                s.sample({{"outcome", "bounced"}}, double(st.bounced));
                s.sample({{"outcome", "expired"}}, double(st.expired));
              });
  r.collector("postern_queue_attempts_total", "Delivery attempts started (one per message and try).", Type::kCounter,
              [this](Sink& s) { s.sample({}, double(queue_->stats().attempts)); });
  r.collector("postern_spool_written_bytes_total",
              "Bytes appended to spool segments (bodies, envelopes, state records).", Type::kCounter,
              [this](Sink& s) { s.sample({}, double(spool_->stats().bytes)); });
  r.collector("postern_spool_commits_total", "Messages made durable in the spool.", Type::kCounter,
              [this](Sink& s) { s.sample({}, double(spool_->stats().commits)); });
  r.collector("postern_spool_syncs_total", "fdatasync calls of the spool (commits per sync: the group-commit factor).",
              Type::kCounter, [this](Sink& s) { s.sample({}, double(spool_->stats().syncs)); });
  r.collector("postern_spool_disk_bytes", "Size of all spool segment files.", Type::kGauge,
              [this](Sink& s) { s.sample({}, double(spool_->usage().disk_bytes)); });
  r.collector("postern_spool_live_bytes", "Body bytes of messages still owed delivery.", Type::kGauge,
              [this](Sink& s) { s.sample({}, double(spool_->usage().live_bytes)); });
  r.collector("postern_bans_active", "Client addresses (or IPv6 networks) banned now.", Type::kGauge,
              [this](Sink& s) { s.sample({}, double(protector_->activeBans())); });
  r.collector("postern_tls_certificate_expiry_seconds",
              "Seconds until the certificate expires (negative once expired), by certificate file and name.",
              Type::kGauge, [this](Sink& s) {
                if (!certs_) return;
                double now = double(std::time(nullptr));
                for (const auto& c : certs_->certificates())
                  for (const auto& name : c.names)
                    s.sample({{"file", c.cert_path}, {"name", name}}, double(c.not_after) - now);
              });
}

awaitable<void> Server::watchExpiry() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto next_expiry = std::chrono::steady_clock::now();
  while (!shutting_down_) {
    if (std::chrono::steady_clock::now() >= next_expiry) {
      asio::post(*cpu_pool_, [this] { logExpiry(); });
      next_expiry += kExpiryCheckInterval;
    }
    timer.expires_after(kTicketKeyRotation);
    co_await timer.async_wait(net::use_nothrow);
    if (!shutting_down_) asio::post(*cpu_pool_, [this] { reloadCertificates("ticket_key_rotation"); });
  }
}

awaitable<void> Server::handleSignals() {
  for (;;) {
    auto [ec, sig] = co_await signals_->async_wait(net::use_nothrow);
    if (ec) co_return;
    if (sig == SIGHUP) {
      log::info("server.reload").kv("signal", "SIGHUP");
      notifyReloading();
      asio::post(*cpu_pool_, [this] {
        directory_->reloadIfChanged(true);
        reloadCertificates("SIGHUP");
        dkim_->load("SIGHUP");
        if (!shutting_down_) notifyReady("reloaded");
      });
      continue;
    }
    log::info("server.stopping").kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT")
        .kv("open_connections", uint64_t(open_connections_.load()));
    beginShutdown();
    co_return;
  }
}

void Server::beginShutdown() {
  notifyStopping();
  shutting_down_ = true;
  for (auto& a : acceptors_) {
    if (kept_open_.count(&a)) continue;   // closed when the loops stop
    std::error_code ignored;
    a.close(ignored);
  }
  if (control_) control_->stop();
  if (directory_watcher_) directory_watcher_->stop();
  if (cert_watcher_) cert_watcher_->stop();
  for (auto& w : workers_) {
    asio::post(w->io, [wp = w.get()] {
      for (Connection* c : wp->connections) c->interruptIfIdle();
    });
  }
  // Bounded: after shutdown_timeout every remaining connection is closed.
  shutdown_thread_ = std::thread([this] {
    util::setThreadName("postern-stop");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_->server.shutdown_timeout_ms);
    while (open_connections_.load() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    if (open_connections_.load() > 0) {
      log::warn("server.shutdown_timeout").kv("closing", uint64_t(open_connections_.load()));
      for (auto& w : workers_)
        asio::post(w->io, [wp = w.get()] {
          for (Connection* c : wp->connections) c->forceClose();
        });
      std::this_thread::sleep_for(200ms);
    }
    for (auto& w : workers_) w->guard.reset();
    for (auto& w : workers_) w->io.stop();
  });
}

Status Server::preparePrivileges() {
  const config::Config& c = *cfg_;
  if (::geteuid() != 0) {
    // Nothing to give up: the operator started us as an ordinary user (or with only
    // CAP_NET_BIND_SERVICE, as the capability-only unit does).
    log::info("server.privileges").kv("status", "unprivileged").kv("uid", uint64_t(::geteuid()))
        .kv("gid", uint64_t(::getegid()));
  } else if (c.server.user == "root") {
    log::warn("server.runs_as_root").kv("reason", "[server] user = \"root\"")
        .kv("fix", "name an unprivileged user in [server] user (default \"postern\")");
  } else {
    auto id = lookupIdentity(c.server);
    if (!id) return id.status();
    if (id->uid == 0) return Status::invalid(fmt::format(
        "[server] user '{}' has uid 0: write user = \"root\" to run as root on purpose", id->user));
    target_ = *id;
  }
  for (const auto& d : {c.data_dir, c.spoolDir(), c.stateDir(), c.mailbox_root})
    if (Status s = makeDirs(d, 0700); !s) return s;
  if (!target_) return Status::ok();
  // The data folder (spool, state, bans) is the daemon's entirely; of the mail store only
  // the folders down to each Maildir's tmp/new/cur, which is what delivery writes into.
  // Mail copied in by root keeps its files' owner (see docs/migration-docker-mailserver.md).
  auto data = takeOwnership(c.data_dir, *target_, 64, false, c.mailbox_root);
  if (!data) return data.status();
  auto mail = takeOwnership(c.mailbox_root, *target_, 4, true);
  if (!mail) return mail.status();
  owner_changes_.changed = data->changed + mail->changed;
  owner_changes_.skipped = data->skipped + mail->skipped;
  return Status::ok();
}

Status Server::dropRoot() {
  const config::Config& c = *cfg_;
  if (!target_) return Status::ok();
  std::vector<std::string> allowed = {c.accounts_path};
  if (!c.aliases_path.empty()) allowed.push_back(c.aliases_path);
  if (!c.quotas_path.empty()) allowed.push_back(c.quotas_path);
  if (c.tls.configured) {
    allowed.push_back(c.tls.default_cert.cert);
    allowed.push_back(c.tls.default_cert.key);
    for (const auto& p : c.tls.extra) {
      allowed.push_back(p.cert);
      allowed.push_back(p.key);
    }
    for (const auto& t : c.tls.traefik) allowed.push_back(t.file);   // Traefik writes it 0600
  }
  for (const auto& r : c.routes) {
    if (!r.auth_file.empty()) allowed.push_back(r.auth_file);   // relay passwords: 0600, often root's
  }
  if (c.srs.enabled) allowed.push_back(c.srs.secret_file);
  auto reader = PrivilegedReader::start(std::move(allowed));
  if (!reader) return reader.status();
  reader_ = std::move(reader.value());
  if (Status s = dropPrivileges(*target_); !s) return Status::io("cannot drop root: " + s.message());
  // A parent folder without search permission for the user shows here, named, not as
  // a failed delivery later.
  for (const auto& d : {c.data_dir, c.spoolDir(), c.stateDir(), c.mailbox_root})
    if (::access(d.c_str(), R_OK | W_OK | X_OK) != 0)
      return Status::io(fmt::format("{} is not usable by user '{}' ({}): a parent folder may deny it search "
                                    "permission; choose a data_dir that user can reach", d, target_->user,
                                    std::strerror(errno)));
  log::info("server.privileges").kv("status", "dropped").kv("user", target_->user).kv("uid", uint64_t(target_->uid))
      .kv("group", target_->group).kv("gid", uint64_t(target_->gid)).kv("reader_pid", uint64_t(reader_->pid()))
      .kv("owner_changed", owner_changes_.changed).kv("owner_skipped", owner_changes_.skipped);
  if (owner_changes_.skipped)
    log::warn("privileges.hard_links").kv("files", owner_changes_.skipped)
        .kv("reason", "files with several hard links keep their owner");
  return Status::ok();
}

int Server::run() {
  const config::Config& c = *cfg_;
  if (sodium_init() < 0) {
    log::error("server.start_failed").kv("reason", "libsodium initialisation failed");
    return 1;
  }
  if (Status s = preparePrivileges(); !s) {
    log::error("server.start_failed").kv("reason", s.message());
    return 1;
  }
  // Listeners are bound first, while the process may still be root (ports below 1024).
  unsigned n = c.server.threads ? c.server.threads : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->guard = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(w->io.get_executor());
    workers_.push_back(std::move(w));
  }
  asio::io_context& main_io = workers_[0]->io;
  signals_ = std::make_unique<asio::signal_set>(main_io, SIGTERM, SIGINT, SIGHUP);
  for (const auto& l : c.listeners) {
    tcp::endpoint ep(asio::ip::make_address(l.address.address.toString()), l.address.port);
    tcp::acceptor& a = acceptors_.emplace_back(main_io);
    std::error_code ec;
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && ep.address().is_v6()) a.set_option(asio::ip::v6_only(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      log::error("server.start_failed").kv("listener", l.name).kv("address", l.address.toString())
          .kv("reason", fmt::format("cannot listen: {}", ec.message()));
      return 1;
    }
  }
  dkim_ = std::make_unique<dkim::KeyStore>(c.dkim.keys_dir);
  dkim_->load("start");
  if (Status s = dropRoot(); !s) {
    log::error("server.start_failed").kv("reason", s.message());
    return 1;
  }
  if (c.tls.configured) {
    certs_ = std::make_unique<tls::CertStore>(c.tls, files());
    if (Status s = certs_->load(); !s) {
      log::error("server.start_failed").kv("reason", s.message());
      return 1;
    }
    for (const auto& ci : certs_->certificates())
      log::info("tls.certificate").kv("file", ci.cert_path).kv("names", fmt::format("{}", fmt::join(ci.names, ",")))
          .kv("serial", ci.serial_hex).kv("days_left", int64_t(ci.days_left));
  }
  directory_ = std::make_unique<directory::DirectoryService>(c.accounts_path, c.aliases_path, files());
  directory_->setQuotas(c.quotas_path, c.default_quota);
  if (Status s = directory_->load(); !s) {
    log::error("server.start_failed").kv("reason", s.message());
    return 1;
  }
  std::vector<spool::Pending> pending;
  spool::SpoolOptions spool_options;
  spool_options.commit_wait = std::chrono::milliseconds(c.spool.commit_wait_ms);
  spool_options.commit_batch = c.spool.commit_batch;
  spool_options.segment_size = c.spool.segment_size;
  spool_options.on_durable = [h = &metrics_.spoolCommitSeconds()](std::chrono::steady_clock::duration d) {
    h->observe(std::chrono::duration<double>(d).count());
  };
  auto sp = spool::Spool::open(io::posixEnv(), c.spoolDir(), &pending, spool_options);
  if (!sp) {
    log::error("server.start_failed").kv("reason", sp.status().message());
    return 1;
  }
  spool_ = std::move(sp.value());
  queue::QueueOptions qo;
  qo.lifetime = std::chrono::milliseconds(c.queue.lifetime_ms);
  qo.retry_min = std::chrono::milliseconds(c.queue.retry_min_ms);
  qo.retry_max = std::chrono::milliseconds(c.queue.retry_max_ms);
  qo.delay_warning = std::chrono::milliseconds(c.queue.delay_warning_ms);
  qo.hostname = c.hostname;
  // Notifications to a local sender go straight to its mailbox (after alias expansion).
  auto local_mailbox = [this](const std::string& sender) -> std::optional<std::string> {
    auto r = directory_->current()->resolve(sender);
    if (r.outcome != directory::Directory::Outcome::kDeliver) return std::nullopt;
    for (const auto& t : r.targets)
      if (t.local_mailbox) return t.address;
    return std::nullopt;
  };
  queue_ = std::make_unique<queue::Queue>(*spool_, qo, local_mailbox,
                                          [this] { return spool::newEnvelope(next_seq_.fetch_add(1)); });
  deliverer_ = std::make_unique<delivery::Deliverer>(
      io::posixEnv(), *spool_, c.mailbox_root, c.hostname, kDeliveryThreads,
      [this](delivery::Report r) { queue_->report(std::move(r)); },
      [this](const std::string& mailbox) { return directory_->current()->findAccount(mailbox) != nullptr; });
  quota_usage_ = std::make_unique<delivery::QuotaUsage>(c.mailbox_root);
  deliverer_->setQuota(*quota_usage_, [this](const std::string& mailbox) { return directory_->quotaFor(mailbox); },
                       &counters_);
  queue_->setDeliverer(deliverer_.get());
  {
    auto resolver = dns::createConfigured(c.dns);
    if (!resolver) {
      log::error("server.start_failed").kv("reason", resolver.status().message());
      return 1;
    }
    resolver_ = std::move(resolver.value());
    if (c.srs.enabled) {
      // Made once (random), then read at every start: a new secret breaks every address
      // rewritten before, so it is never replaced here.
      auto made = delivery::createSrsSecretIfMissing(c.srs.secret_file);
      Result<std::string> secret = made ? files().read(c.srs.secret_file) : Result<std::string>(made.status());
      if (secret) secret = delivery::checkSrsSecret(std::move(secret.value()), c.srs.secret_file);
      if (!secret) {
        log::error("server.start_failed").kv("reason", "[srs] secret_file: " + secret.status().message());
        return 1;
      }
      srs_ = std::make_shared<const delivery::Srs>(std::move(secret.value()), c.srs.domain, c.srs.max_age_days);
      log::info("srs.enabled").kv("domain", c.srs.domain).kv("secret_file", c.srs.secret_file)
          .kv("created", made.value() ? "yes" : "no").kv("max_age_days", uint64_t(c.srs.max_age_days));
    }
    delivery::RemoteOptions rem;
    rem.hostname = c.hostname;
    rem.srs = srs_;
    rem.srs_exclude_domains = c.srs.exclude_domains;
    rem.is_local_domain = [this](std::string_view domain) { return directory_->current()->isLocalDomain(domain); };
    rem.remote_port = c.queue.remote_port;
    rem.destination_concurrency = c.queue.destination_concurrency;
    rem.initial_concurrency = c.queue.initial_concurrency;
    rem.recipients_per_transaction = c.queue.recipients_per_transaction;
    rem.routes = c.routes;
    rem.mta_sts = c.queue.mta_sts;
    rem.mta_sts_cache = c.stateDir() + "/mta-sts-cache.json";
    rem.mta_sts_port = c.queue.mta_sts_port;
    rem.ca_file = c.queue.ca_file;
    // A destination whose hosts all failed is skipped until the next retry would come anyway.
    rem.dead_time = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(c.queue.retry_min_ms),
                                                        delivery::kMaxDeadTime);
    remote_ = std::make_unique<delivery::RemoteDeliverer>(
        *spool_, *resolver_, std::move(rem), [this](delivery::Report r) { queue_->report(std::move(r)); }, &counters_);
    if (Status s = remote_->init([this](const std::string& path) { return files().read(path); }); !s) {
      log::error("server.start_failed").kv("reason", s.message());
      return 1;
    }
    queue_->setRemote(remote_.get());
  }
  if (!pending.empty()) log::info("spool.recovered").kv("messages", uint64_t(pending.size()));
  queue_->recovered(pending);
  cpu_pool_ = std::make_unique<asio::thread_pool>(kCpuThreads);
  nameThreads(*cpu_pool_, kCpuThreads, "postern-cpu");
  // Protection never acts on the proxies themselves: every network trusted to send PROXY
  // headers is exempt (a LOCAL or UNKNOWN header leaves the proxy's address as the client).
  std::vector<Cidr> proxies;
  for (const auto& l : c.listeners)
    if (l.proxy != config::ProxyMode::kOff) proxies.insert(proxies.end(), l.trusted_networks.begin(), l.trusted_networks.end());
  protector_ = std::make_unique<protect::Protector>(c.protect, proxies, c.stateDir() + "/bans", counters_);
  if (Status s = protector_->load(); !s) {
    log::error("server.start_failed").kv("reason", s.message());
    return 1;
  }
  protector_->setOffloader([this](std::function<void()> f) { asio::post(*cpu_pool_, std::move(f)); });
  if (auto bans = protector_->list(); !bans.empty()) log::info("protect.bans_loaded").kv("active", uint64_t(bans.size()));
  if (!c.protect.dnsbl.zones.empty()) {
    // Through the shared resolver, unless [protect.dnsbl] resolver names a server of its own.
    auto d = protect::Dnsbl::create(c.protect.dnsbl, *resolver_);
    if (!d) {
      log::error("server.start_failed").kv("reason", d.status().message());
      return 1;
    }
    dnsbl_ = std::move(d.value());
  }
  if (c.protect.greylist.enabled) {
    greylist_ = std::make_unique<protect::Greylist>(c.protect.greylist, c.stateDir() + "/greylist", counters_);
    if (Status s = greylist_->load(); !s) {
      log::error("server.start_failed").kv("reason", s.message());
      return 1;
    }
    greylist_->setOffloader([this](std::function<void()> f) { asio::post(*cpu_pool_, std::move(f)); });
    log::info("greylist.loaded").kv("entries", uint64_t(greylist_->size()));
  }
  smtp_ctx_.reset(new smtp::ServerContext{c, *directory_, *spool_, *queue_, certs_.get(), *cpu_pool_, counters_,
                                          metrics_, next_seq_, shutting_down_, *protector_, dnsbl_.get()});
  smtp_ctx_->greylist = greylist_.get();
  smtp_ctx_->dkim = dkim_.get();
  smtp_ctx_->quota_usage = quota_usage_.get();
  smtp_ctx_->srs = srs_.get();
  if (c.verify.enabled) {
    auto resolver = dns::createConfigured(c.dns);
    if (!resolver) {
      log::error("server.start_failed").kv("reason", resolver.status().message());
      return 1;
    }
    inbound_resolver_ = std::move(resolver.value());
    inbound_dns_ = std::make_unique<auth::ResolverDns>(*inbound_resolver_);
    verifier_ = std::make_unique<auth::Verifier>(c.verify, c.hostname, *inbound_dns_, cpu_pool_.get());
    smtp_ctx_->verifier = verifier_.get();
  }

  auto acceptor = acceptors_.begin();
  for (const auto& l : c.listeners) {
    tcp::acceptor& a = *acceptor++;
    log::info("server.listening").kv("listener", l.name).kv("address", l.address.toString())
        .kv("proxy_protocol", config::proxyModeName(l.proxy))
        .kv("tls", l.service->implicit_tls ? "implicit" : (certs_ && l.service->offers_starttls ? "starttls" : "none"));
    if (l.service->service == config::Service::kMetrics) kept_open_.insert(&a);
    asio::co_spawn(main_io, acceptLoop(a, l), asio::detached);
  }
  control_ = std::make_unique<ControlServer>(main_io, c.stateDir() + "/control.sock",
                                             ControlTargets{protector_.get(), queue_.get(), spool_.get()}, cpu_pool_.get());
  if (Status s = control_->start(); !s) {
    log::error("server.start_failed").kv("reason", s.message());
    return 1;
  }
  asio::co_spawn(main_io, handleSignals(), asio::detached);
  std::vector<std::string> directory_files{c.accounts_path, c.aliases_path};
  if (!c.quotas_path.empty()) directory_files.push_back(c.quotas_path);
  directory_watcher_ = std::make_unique<FileWatcher>(
      main_io, std::move(directory_files), kDirectoryPollInterval,
      [this] { asio::post(*cpu_pool_, [this] { directory_->reloadIfChanged(); }); }, files());
  directory_watcher_->start();
  if (certs_) {
    cert_watcher_ = std::make_unique<FileWatcher>(main_io, certs_->files(), kCertificatePollInterval, [this] {
      asio::post(*cpu_pool_, [this] { reloadCertificates("file_change"); });
    }, files());
    cert_watcher_->start();
    asio::co_spawn(main_io, watchExpiry(), asio::detached);
  }
  registerCollectors();
  metrics_.setStarted();
  log::info("server.started").kv("version", POSTERN_VERSION).kv("hostname", c.hostname).kv("threads", uint64_t(n))
      .kv("pid", uint64_t(::getpid()));
  // Every listener is bound and listening: connections from here on are accepted.
  notifyReady(fmt::format("serving {} listeners", c.listeners.size()));

  for (size_t i = 1; i < workers_.size(); ++i)
    workers_[i]->thread = std::thread([i, w = workers_[i].get()] {
      util::setThreadName("postern-io" + std::to_string(i));   // the main thread is worker 0
      w->io.run();
    });
  main_io.run();
  for (size_t i = 1; i < workers_.size(); ++i) workers_[i]->thread.join();
  if (shutdown_thread_.joinable()) shutdown_thread_.join();
  // Answers pending checks (their posts go to the stopped loops) and returns only when no
  // verdict is being or will be posted: the shared resolver may still hold DNSBL lookups, but
  // their answers are dropped from here on, so resolver_ may outlive the workers' io_contexts.
  dnsbl_.reset();
  inbound_resolver_.reset();   // its answers are posted to the workers' loops: gone before them
  acceptors_.clear();
  signals_.reset();
  control_.reset();
  directory_watcher_.reset();
  cert_watcher_.reset();
  workers_.clear();
  cpu_pool_->join();
  if (greylist_) greylist_->flush();   // changes not yet saved (saves are spaced out)
  queue_->stop();       // no new attempts; those under way finish and are recorded
  deliverer_->drain();
  remote_->stop();      // conversations under way are dropped: their recipients stay pending
  spool_->drain();
  deliverer_.reset();
  resolver_.reset();    // before remote_: its answers are posted to remote_'s event loop
  remote_.reset();
  queue_.reset();
  spool_->drain();
  spool_.reset();
  log::info("server.stopped");
  log::flush();
  return 0;
}

int serve(std::shared_ptr<const config::Config> config) {
  Server s(std::move(config));
  return s.run();
}

}  // namespace postern::app
