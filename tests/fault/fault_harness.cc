#include "fault_harness.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <random>
#include <thread>

#include "delivery/maildir.h"
#include "log/log.h"

namespace postern::fault {

using namespace std::chrono_literals;

namespace {

constexpr char kSender[] = "sender@remote.test";
constexpr auto kRecoveryTimeout = 20s;

template <class Start>
Status wait(Start start) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  start([p](Status s) { p->set_value(std::move(s)); });
  return f.get();
}

// The X-Id header value of a stored message, or 0.
uint64_t idOf(const std::string& content) {
  size_t at = content.find("\nX-Id: ");
  if (at == std::string::npos) return 0;
  return std::strtoull(content.c_str() + at + 7, nullptr, 10);
}

}  // namespace

Life::Life(io::Env& env, spool::SpoolOptions options) {
  auto sp = spool::Spool::open(env, kSpoolDir, &pending_, options);
  if (!sp) {
    open_status_ = sp.status();
    return;
  }
  spool_ = std::move(sp.value());
  queue::QueueOptions qo;
  qo.retry_min = 5ms;
  qo.retry_max = 20ms;
  qo.hostname = "mail.example.test";
  queue_ = std::make_unique<queue::Queue>(*spool_, qo, [](const std::string&) { return std::nullopt; },
                                          [this] { return spool::newEnvelope(1'000'000 + seq_++); });
  deliverer_ = std::make_unique<delivery::Deliverer>(
      env, *spool_, kMailRoot, "mail.example.test", 2, [this](delivery::Report r) { queue_->report(std::move(r)); });
  queue_->setDeliverer(deliverer_.get());
  queue_->recovered(pending_);
}

Life::~Life() {
  if (!spool_) return;
  queue_->stop();
  deliverer_->drain();
  spool_->drain();
  deliverer_.reset();
  spool_.reset();
  queue_.reset();
}

bool Life::commit(const Message& m) {
  spool::Envelope env = spool::newEnvelope(seq_++);
  env.mail_from = kSender;
  env.recipients.push_back({kMailbox, kMailbox, true});
  if (m.remote) env.recipients.push_back({kRemote, kRemote, false});
  env.size = m.body.size();
  size_t split = m.chunked ? m.body.size() / 2 : 0;
  if (split > 0) {
    std::string chunk = m.body.substr(0, split);
    Status s = wait([&](auto cb) { spool_->appendChunk(env.queue_id, std::move(chunk), cb); });
    if (!s) {
      spool_->abort(env.queue_id);   // as the session does when it gives up the transaction
      return false;
    }
  }
  auto tail = std::make_shared<const std::string>(m.body.substr(split));
  Status s = wait([&](auto cb) { spool_->commit(env, tail, cb); });
  if (!s) {
    if (split > 0) spool_->abort(env.queue_id);
    return false;
  }
  queue_->add(env, split > 0 ? nullptr : tail);
  return true;
}

std::string CheckResult::describe() const {
  return fmt::format("delivered {}; lost {}; doubled {}; wrong bytes {}; remote lost {}", delivered,
                     fmt::join(lost, ","), fmt::join(doubled, ","), fmt::join(wrong, ","), fmt::join(remote_lost, ","));
}

spool::SpoolOptions Harness::smallSegments() {
  spool::SpoolOptions o;
  o.segment_size = 48 * 1024;   // rolls and compaction within a few dozen messages
  o.commit_wait = std::chrono::microseconds(0);
  return o;
}

Harness::Harness(spool::SpoolOptions options) : options_(options) {
  log::init(log::Format::kText, std::getenv("POSTERN_FAULT_LOG") ? log::Level::kDebug : log::Level::kError);   // one line per deferral would be most of the run
  (void)io::makeDirs(mem_, kMailRoot, 0700);
}

Life& Harness::start() {
  life_.reset();
  fault_ = std::make_unique<io::FaultEnv>(mem_);
  life_ = std::make_unique<Life>(*fault_, options_);
  return *life_;
}

Message Harness::makeMessage(uint64_t id, uint64_t seed) const {
  std::mt19937_64 rng(seed * 7919 + id);
  Message m;
  m.id = id;
  size_t lines = 1 + rng() % 60;   // ~80 bytes a line: 80 B .. 5 KB
  m.body = fmt::format("From: <{}>\r\nSubject: message {}\r\nX-Id: {}\r\n\r\n", kSender, id, id);
  for (size_t i = 0; i < lines; ++i) m.body += fmt::format("line {} of message {} {:064x}\r\n", i, id, rng());
  m.chunked = rng() % 4 == 0;
  m.remote = rng() % 5 == 0;
  return m;
}

size_t Harness::load(size_t count, unsigned threads, uint64_t seed) {
  std::atomic<size_t> acked{0};
  std::atomic<int64_t> left{static_cast<int64_t>(count)};
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      while (left.fetch_sub(1) > 0 && life_ && life_->ok()) {
        Message m = makeMessage(next_id_++, seed);
        if (life_->commit(m)) {
          ++acked;
          std::lock_guard lock(mu_);
          acked_[m.id] = std::move(m);
        }
      }
    });
  for (auto& t : ts) t.join();
  return acked.load();
}

void Harness::crash(io::MemEnv::CrashMode mode, uint64_t seed) {
  if (fault_) fault_->crashAtCall(1);
  life_.reset();
  mem_.crash(mode, seed);
}

void Harness::stop() { life_.reset(); }

CheckResult Harness::recoverAndCheck() {
  Life& life = start();
  CheckResult r;
  if (!life.ok()) {
    for (const auto& [id, m] : acked_) r.lost.push_back(id);
    return r;
  }
  // Every local recipient finished (remote ones stay queued: no outbound delivery).
  auto deadline = std::chrono::steady_clock::now() + kRecoveryTimeout;
  for (;;) {
    life.queue().drain();
    bool pending_local = false;
    for (const auto& p : life.spool().list())
      for (size_t i = 0; i < p.state.size(); ++i)
        pending_local |= p.env.recipients[i].local && p.state[i].status == spool::RcptStatus::kPending;
    if (!pending_local || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(2ms);
  }
  std::map<uint64_t, std::vector<std::string>> found;
  for (const char* sub : {"new", "cur"}) {
    std::string dir = fmt::format("{}/example.test/user/{}", kMailRoot, sub);
    auto names = mem_.entries(dir);
    if (!names) continue;
    for (const auto& n : *names) {
      auto c = mem_.contents(dir + "/" + n);
      if (c) found[idOf(*c)].push_back(*c);
    }
  }
  std::set<std::string> queued_remote;   // X-Ids of messages still queued for the remote recipient
  for (const auto& p : life.spool().list()) {
    auto body = life.spool().readBody(p.env.queue_id);
    if (body && p.state.size() == 2 && p.state[1].status == spool::RcptStatus::kPending)
      queued_remote.insert(std::to_string(idOf("\n" + *body)));
  }
  for (const auto& [id, m] : acked_) {
    auto it = found.find(id);
    if (it == found.end()) {
      r.lost.push_back(id);
    } else {
      if (it->second.size() > 1) r.doubled.push_back(id);
      if (it->second[0] != delivery::renderForMaildir(kSender, kMailbox, m.body)) r.wrong.push_back(id);
    }
    if (m.remote && !queued_remote.count(std::to_string(id))) r.remote_lost.push_back(id);
  }
  for (const auto& [id, copies] : found) {
    r.delivered += copies.size();
    if (!acked_.count(id) && copies.size() > 1) r.doubled.push_back(id);   // unacked: at most once
  }
  return r;
}

}  // namespace postern::fault
