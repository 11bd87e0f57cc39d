// Milter client (see client.h). One connection per SMTP session and filter; every read and
// write has a deadline (command_timeout per reply, message_timeout for the body and the
// end-of-message exchange; a 'p' progress reply from the filter extends it). Any failure
// (connect, timeout, malformed packet, unexpected reply) closes the connection for good:
// from then on every call returns the filter's default_action, and the first such
// Decision carries the reason in `failure` so that the session logs it once.
#include "milter/client.h"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>

#include <fmt/format.h>

#include <chrono>

#include "util/strings.h"

namespace postern::milter {

using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;
using config::kMilterBody, config::kMilterConnect, config::kMilterHeader, config::kMilterHelo, config::kMilterMail,
    config::kMilterRcpt;
using Macros = std::vector<std::pair<std::string, std::string>>;

namespace {

// Actions offered: all of them. Header and body edits and quarantine are applied;
// recipient and sender changes are reported (logged) but not applied; symbol lists are
// accepted and ignored (we send a fixed macro set).
constexpr uint32_t kOfferedActions = kActAddHeaders | kActChangeBody | kActAddRcpt | kActDeleteRcpt |
                                     kActChangeHeaders | kActQuarantine | kActChangeFrom | kActAddRcptPar |
                                     kActSetSymList;
// Protocol steps we can leave out or run without a reply, as the filter asks.
constexpr uint32_t kOfferedProtocol = kProtoNoConnect | kProtoNoHelo | kProtoNoMail | kProtoNoRcpt | kProtoNoBody |
                                      kProtoNoHeaders | kProtoNoEoh | kProtoNrHeader | kProtoNoUnknown | kProtoNoData |
                                      kProtoSkip | kProtoNrConnect | kProtoNrHelo | kProtoNrMail | kProtoNrRcpt |
                                      kProtoNrData | kProtoNrUnknown | kProtoNrEoh | kProtoNrBody |
                                      kProtoHeaderLeadingSpace;
constexpr size_t kReadBuffer = 8192;
// Limits on what one end-of-message exchange may collect (beyond kMaxPacket per packet).
constexpr size_t kMaxModifications = 1000;
constexpr size_t kMaxReplacementBody = 64 * 1024 * 1024;
// How far past its first deadline a reply may be awaited however often the filter says
// "progress": a filter stuck in a loop of 'p' must not hold the session for ever.
constexpr std::chrono::minutes kMaxProgressExtension{10};

Decision fromReplyCode(const std::string& text) {
  // "554 5.7.1 text" / "451 4.7.1 text" / "550 text"
  Decision d;
  d.code = (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
  d.action = text[0] == '5' ? Decision::Action::kReject : Decision::Action::kTempFail;
  std::string_view rest = text.size() > 4 ? std::string_view(text).substr(4) : std::string_view();
  size_t sp = rest.find(' ');
  std::string_view first = rest.substr(0, sp);
  // An enhanced code: class.subject.detail, class matching the reply's first digit.
  bool enhanced = first.size() >= 5 && first[0] == text[0] && first[1] == '.' &&
                  first.find_first_not_of("0123456789.") == std::string_view::npos;
  if (enhanced) {
    d.enhanced = std::string(first);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  } else {
    d.enhanced = d.action == Decision::Action::kReject ? "5.7.1" : "4.7.1";
  }
  // A multi-line text from the filter becomes one line.
  std::string t(rest);
  for (char& c : t)
    if (c == '\r' || c == '\n') c = ' ';
  d.text = std::move(t);
  return d;
}

}  // namespace

struct Client::Impl {
  Impl(asio::any_io_executor ex, const config::Milter& c) : cfg(c), sock(ex), timer(ex) {}

  const config::Milter& cfg;
  asio::generic::stream_protocol::socket sock;
  asio::steady_timer timer;
  std::string in;
  bool opened = false;     // negotiated
  bool failed = false;     // from now on: default_action
  uint32_t protocol = 0;   // the filter's protocol flags
  uint32_t actions = 0;
  bool conn_accepted = false;   // 'a' at connect/HELO: nothing more for this connection
  bool msg_accepted = false;    // 'a' in a transaction: nothing more for this message
  bool in_txn = false;          // MAIL sent, message not finished
  std::string auth_user, tls_version;   // {auth_authen}, {tls_version} with MAIL
  std::string queue_id;                 // {i}: with MAIL, DATA and end of message

  std::chrono::milliseconds commandTimeout() const { return std::chrono::milliseconds(cfg.command_timeout_ms); }

  Decision unavailable(std::string reason = {}) {
    Decision d;
    d.unavailable = true;
    d.failure = std::move(reason);
    if (cfg.default_action == config::MilterDefault::kAccept) {
      d.action = Decision::Action::kAccept;
    } else {
      d.action = Decision::Action::kTempFail;
      d.code = 451;
      d.enhanced = "4.7.1";
      d.text = "Service temporarily unavailable, try again later";
    }
    return d;
  }

  Decision fail(std::string reason) {
    failed = true;
    std::error_code ec;
    sock.close(ec);
    return unavailable(std::move(reason));
  }

  net::awaitable<std::error_code> write(std::string_view data, Clock::time_point deadline) {
    timer.expires_at(deadline);
    auto r = co_await (asio::async_write(sock, asio::buffer(data.data(), data.size()), net::use_nothrow) ||
                       timer.async_wait(net::use_nothrow));
    if (r.index() == 1) co_return std::make_error_code(std::errc::timed_out);
    co_return std::get<0>(std::get<0>(r));
  }

  // One reply; 'p' (progress) is consumed here and moves the deadline on.
  net::awaitable<Result<Reply>> read(Clock::time_point deadline, std::chrono::milliseconds progress_step) {
    const Clock::time_point hard_deadline = deadline + kMaxProgressExtension;
    for (;;) {
      ParseResult p = parseReply(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(in.data()), in.size()));
      if (p.state == ParseResult::State::kError) co_return Status::invalid("malformed reply: " + p.error);
      if (p.state == ParseResult::State::kDone) {
        in.erase(0, p.consumed);
        if (p.reply.kind == Reply::Kind::kProgress) {
          deadline = std::min(hard_deadline, std::max(deadline, Clock::now() + progress_step));
          continue;
        }
        co_return std::move(p.reply);
      }
      if (Clock::now() >= deadline) co_return Status::io("timeout waiting for the filter's reply");
      size_t old = in.size();
      in.resize(old + kReadBuffer);
      timer.expires_at(deadline);
      auto r = co_await (sock.async_read_some(asio::buffer(in.data() + old, kReadBuffer), net::use_nothrow) ||
                         timer.async_wait(net::use_nothrow));
      if (r.index() == 1) {
        in.resize(old);
        co_return Status::io("timeout waiting for the filter's reply");
      }
      auto [ec, n] = std::get<0>(r);
      in.resize(old + n);
      if (ec == asio::error::eof) co_return Status::io("the filter closed the connection");
      if (ec) co_return Status::io("read: " + ec.message());
    }
  }

  // Sends `packets` (macros first, then the command); reads and interprets the reply unless
  // `no_reply`. Used for every stage but end of message.
  net::awaitable<Decision> step(const std::string& packets, bool no_reply, const char* stage) {
    if (auto ec = co_await write(packets, Clock::now() + commandTimeout()); ec)
      co_return fail(fmt::format("{}: write: {}", stage, ec.message()));
    if (no_reply) co_return Decision{};
    auto r = co_await read(Clock::now() + commandTimeout(), commandTimeout());
    if (!r) co_return fail(fmt::format("{}: {}", stage, r.status().message()));
    co_return interpret(*r, stage);
  }

  Decision interpret(const Reply& rep, const char* stage) {
    using K = Reply::Kind;
    Decision d;
    switch (rep.kind) {
      case K::kContinue: break;
      case K::kAccept: d.action = Decision::Action::kAccept; break;
      case K::kReject: d.action = Decision::Action::kReject; break;
      case K::kTempFail: d.action = Decision::Action::kTempFail; break;
      case K::kDiscard: d.action = Decision::Action::kDiscard; break;
      case K::kReplyCode: d = fromReplyCode(rep.text); break;
      case K::kSkip: break;   // only meaningful for body chunks; the caller handles it
      case K::kShutdown: return fail(fmt::format("{}: the filter is shutting down", stage));
      default: return fail(fmt::format("{}: unexpected reply (a modification before end of message)", stage));
    }
    return d;
  }

  bool skip(unsigned stage_bit, uint32_t no_flag) const {
    return failed || !opened || conn_accepted || (cfg.stages & stage_bit) == 0 || (protocol & no_flag) != 0;
  }
};

Client::Client(asio::any_io_executor ex, const config::Milter& cfg)
    : cfg_(cfg), impl_(std::make_unique<Impl>(std::move(ex), cfg)) {}

Client::~Client() = default;

net::awaitable<Decision> Client::open() {
  Impl& m = *impl_;
  if (m.opened || m.failed) co_return m.failed ? m.unavailable() : Decision{};
  asio::generic::stream_protocol::endpoint ep;
  if (cfg_.tcp) {
    asio::ip::tcp::endpoint t(asio::ip::make_address(cfg_.tcp->address.toString()), cfg_.tcp->port);
    ep = asio::generic::stream_protocol::endpoint(t);
  } else {
    ep = asio::generic::stream_protocol::endpoint(asio::local::stream_protocol::endpoint(cfg_.unix_path));
  }
  m.timer.expires_after(std::chrono::milliseconds(cfg_.connect_timeout_ms));
  auto r = co_await (m.sock.async_connect(ep, net::use_nothrow) || m.timer.async_wait(net::use_nothrow));
  if (r.index() == 1) co_return m.fail("connect: timeout");
  if (auto [ec] = std::get<0>(r); ec) co_return m.fail("connect: " + ec.message());

  std::string optneg = encodeOptionNegotiation(kOfferedActions, kOfferedProtocol);
  if (auto ec = co_await m.write(optneg, Clock::now() + m.commandTimeout()); ec)
    co_return m.fail("negotiate: write: " + ec.message());
  auto rep = co_await m.read(Clock::now() + m.commandTimeout(), m.commandTimeout());
  if (!rep) co_return m.fail("negotiate: " + rep.status().message());
  if (rep->kind != Reply::Kind::kOptions) co_return m.fail("negotiate: the filter did not answer with its options");
  // Versions 2..6 share these packets; a filter that wants a newer one cannot be served.
  if (rep->version < 2 || rep->version > kProtocolVersion)
    co_return m.fail(fmt::format("negotiate: unsupported protocol version {}", rep->version));
  if ((rep->protocol & ~kOfferedProtocol) != 0)
    co_return m.fail(fmt::format("negotiate: the filter asks for protocol flags 0x{:x} we did not offer",
                                 rep->protocol & ~kOfferedProtocol));
  m.actions = rep->actions & kOfferedActions;
  m.protocol = rep->protocol;
  m.opened = true;
  co_return Decision{};
}

net::awaitable<Decision> Client::connect(const ConnectInfo& info) {
  Impl& m = *impl_;
  if (m.failed) co_return m.unavailable();
  setSession(info.auth_user, info.tls ? "TLS" : "");
  if (m.skip(kMilterConnect, kProtoNoConnect)) co_return Decision{};
  std::vector<std::pair<std::string, std::string>> macros = {
      {"j", info.our_hostname},
      {"{daemon_name}", "postern"},
      {"{client_addr}", info.client_ip.toString()},
      {"{client_name}", info.client_hostname},
  };
  std::string pkts = encodeMacros('C', macros);
  std::string addr = info.client_ip.toString();
  pkts += encodeConnect(info.client_hostname, std::make_pair(addr, info.client_port), !info.client_ip.isV4());
  Decision d = co_await m.step(pkts, m.protocol & kProtoNrConnect, "connect");
  if (d.action == Decision::Action::kAccept) m.conn_accepted = true;
  co_return d;
}

void Client::setSession(std::string auth_user, std::string tls_version) {
  impl_->auth_user = std::move(auth_user);
  impl_->tls_version = std::move(tls_version);
}

bool Client::failed() const { return impl_->failed; }

net::awaitable<Decision> Client::helo(const std::string& name) {
  Impl& m = *impl_;
  if (m.failed) co_return m.unavailable();
  if (m.skip(kMilterHelo, kProtoNoHelo)) co_return Decision{};
  std::string pkts = encodeHelo(name);
  Decision d = co_await m.step(pkts, m.protocol & kProtoNrHelo, "helo");
  if (d.action == Decision::Action::kAccept) m.conn_accepted = true;
  co_return d;
}

net::awaitable<Decision> Client::mail(const std::string& from, const std::vector<std::string>& esmtp_args,
                                      const std::string& queue_id) {
  Impl& m = *impl_;
  if (m.failed) co_return m.unavailable();
  m.msg_accepted = false;
  if (!m.opened || m.conn_accepted) co_return Decision{};
  m.in_txn = true;
  m.queue_id = queue_id;
  if (m.skip(kMilterMail, kProtoNoMail)) co_return Decision{};
  std::vector<std::pair<std::string, std::string>> macros = {{"{i}", queue_id}, {"{mail_addr}", from}};
  if (!m.auth_user.empty()) macros.emplace_back("{auth_authen}", m.auth_user);
  if (!m.tls_version.empty()) macros.emplace_back("{tls_version}", m.tls_version);
  std::vector<std::string> args{"<" + from + ">"};
  args.insert(args.end(), esmtp_args.begin(), esmtp_args.end());
  std::string pkts = encodeMacros('M', macros) + encodeMail(args);
  Decision d = co_await m.step(pkts, m.protocol & kProtoNrMail, "mail");
  if (d.action == Decision::Action::kAccept) m.msg_accepted = true;
  co_return d;
}

net::awaitable<Decision> Client::rcpt(const std::string& to, const std::vector<std::string>& esmtp_args) {
  Impl& m = *impl_;
  if (m.failed) co_return m.unavailable();
  if (m.msg_accepted || m.skip(kMilterRcpt, kProtoNoRcpt)) co_return Decision{};
  std::vector<std::string> args{"<" + to + ">"};
  args.insert(args.end(), esmtp_args.begin(), esmtp_args.end());
  Macros macros{{"{rcpt_addr}", to}};
  std::string pkts = encodeMacros('R', macros) + encodeRcpt(args);
  Decision d = co_await m.step(pkts, m.protocol & kProtoNrRcpt, "rcpt");
  // 'a' at RCPT accepts the recipient only (libmilter: SMFIS_ACCEPT for this recipient).
  if (d.action == Decision::Action::kAccept) d.action = Decision::Action::kContinue;
  co_return d;
}

namespace {

struct Field {
  std::string_view name, value;   // value: after the colon, through the field's last line (no CRLF)
};

// Splits the header section at the first empty line. Fields are "name:" then the value,
// continuation lines (starting with SP/HTAB) included (RFC 5322 §2.2). A line without a
// colon ends the header as far as the filter is concerned (it goes with the body).
std::vector<Field> splitHeader(std::string_view msg, size_t& body_start, bool* blank_line = nullptr) {
  std::vector<Field> out;
  size_t pos = 0;
  body_start = msg.size();
  if (blank_line) *blank_line = false;
  while (pos < msg.size()) {
    if (msg.compare(pos, 2, "\r\n") == 0) {
      body_start = pos + 2;
      if (blank_line) *blank_line = true;
      return out;
    }
    // one field through its continuation lines
    size_t end = pos;
    for (;;) {
      size_t eol = msg.find("\r\n", end);
      if (eol == std::string_view::npos) {
        end = msg.size();
        break;
      }
      end = eol + 2;
      if (end >= msg.size() || (msg[end] != ' ' && msg[end] != '\t')) break;
    }
    std::string_view line = msg.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      body_start = pos;
      return out;
    }
    std::string_view value = line.substr(colon + 1);
    if (value.ends_with("\r\n")) value.remove_suffix(2);
    out.push_back({line.substr(0, colon), value});
    pos = end;
  }
  body_start = msg.size();
  return out;
}

// Folded values go to the filter with bare LF between lines, as Sendmail and Postfix send them.
std::string milterValue(std::string_view value, bool keep_leading_space) {
  if (!keep_leading_space) {
    // Without SMFIP_HDR_LEADSPC the filter sees the value without the space after the colon.
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  }
  std::string v;
  v.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r' && i + 1 < value.size() && value[i + 1] == '\n') continue;
    v.push_back(value[i]);
  }
  return v;
}

}  // namespace

net::awaitable<Decision> Client::message(std::shared_ptr<const std::string> message, Modifications* mods) {
  Impl& m = *impl_;
  if (m.failed) co_return m.unavailable();
  if (!m.opened || m.conn_accepted || m.msg_accepted) {
    m.in_txn = false;
    co_return Decision{};
  }
  using A = Decision::Action;
  auto finished = [&m](Decision d) {
    if (d.action != A::kContinue) m.in_txn = false;
    return d;
  };
  // DATA
  if ((m.protocol & kProtoNoData) == 0) {
    Macros macros{{"{i}", m.queue_id}};
    std::string pkts = encodeMacros('T', macros) + encodeData();
    Decision d = co_await m.step(pkts, m.protocol & kProtoNrData, "data");
    if (d.action != A::kContinue) co_return finished(d);
  }
  size_t body_start = 0;
  std::vector<Field> fields = splitHeader(*message, body_start);
  // Header fields, one packet each.
  if ((m.cfg.stages & kMilterHeader) && (m.protocol & kProtoNoHeaders) == 0) {
    const bool lead = m.protocol & kProtoHeaderLeadingSpace;
    for (const Field& f : fields) {
      std::string pkt = encodeHeader(f.name, milterValue(f.value, lead));
      Decision d = co_await m.step(pkt, m.protocol & kProtoNrHeader, "header");
      if (d.action != A::kContinue) co_return finished(d);
    }
  }
  if ((m.protocol & kProtoNoEoh) == 0) {
    std::string pkt = encodeEndOfHeaders();
    Decision d = co_await m.step(pkt, m.protocol & kProtoNrEoh, "eoh");
    if (d.action != A::kContinue) co_return finished(d);
  }
  // Body chunks and the end of message run against message_timeout.
  const auto msg_timeout = std::chrono::milliseconds(m.cfg.message_timeout_ms);
  Clock::time_point deadline = Clock::now() + msg_timeout;
  if ((m.cfg.stages & kMilterBody) && (m.protocol & kProtoNoBody) == 0) {
    std::string_view body = std::string_view(*message).substr(body_start);
    for (size_t off = 0; off < body.size(); off += kBodyChunk) {
      std::string pkt = encodeBody(body.substr(off, kBodyChunk));
      if (auto ec = co_await m.write(pkt, deadline); ec)
        co_return m.fail("body: write: " + ec.message());
      if (m.protocol & kProtoNrBody) continue;
      auto r = co_await m.read(deadline, m.commandTimeout());
      if (!r) co_return m.fail("body: " + r.status().message());
      if (r->kind == Reply::Kind::kSkip) break;
      Decision d = m.interpret(*r, "body");
      if (m.failed) co_return d;
      if (d.action != A::kContinue) co_return finished(d);
    }
  }
  Macros eom_macros{{"{i}", m.queue_id}};
  std::string eom = encodeMacros('E', eom_macros) + encodeEndOfMessage();
  if (auto ec = co_await m.write(eom, deadline); ec)
    co_return m.fail("eom: write: " + ec.message());
  // Modifications until the final reply.
  Modifications local;
  Modifications& out = mods ? *mods : local;
  size_t count = 0;
  size_t body_bytes = 0;
  for (;;) {
    auto r = co_await m.read(deadline, m.commandTimeout());
    if (!r) co_return m.fail("eom: " + r.status().message());
    if (++count > kMaxModifications) co_return m.fail("eom: too many modifications");
    using K = Reply::Kind;
    const uint32_t act = m.actions;
    auto refuse = [&](const char* what) { return m.fail(fmt::format("eom: {} without having asked for it", what)); };
    switch (r->kind) {
      case K::kAddHeader:
        if (!(act & kActAddHeaders)) co_return refuse("add header");
        out.headers.push_back({HeaderEdit::Kind::kAdd, 0, r->name, r->value});
        continue;
      case K::kInsertHeader:
        if (!(act & kActAddHeaders)) co_return refuse("insert header");
        out.headers.push_back({HeaderEdit::Kind::kInsert, r->index, r->name, r->value});
        continue;
      case K::kChangeHeader:
        if (!(act & kActChangeHeaders)) co_return refuse("change header");
        out.headers.push_back({HeaderEdit::Kind::kChange, r->index, r->name, r->value});
        continue;
      case K::kReplaceBody:
        if (!(act & kActChangeBody)) co_return refuse("replace body");
        body_bytes += r->data.size();
        if (body_bytes > kMaxReplacementBody) co_return m.fail("eom: replacement body too large");
        if (!out.body) out.body.emplace();
        out.body->append(r->data);
        continue;
      case K::kQuarantine:
        if (!(act & kActQuarantine)) co_return refuse("quarantine");
        out.quarantine = r->data;
        continue;
      case K::kAddRcpt: out.add_rcpt.push_back(r->data); continue;
      case K::kDeleteRcpt: out.delete_rcpt.push_back(r->data); continue;
      case K::kChangeFrom: out.change_from = r->data; continue;
      case K::kSetSymList: continue;
      default: break;
    }
    Decision d = m.interpret(*r, "eom");
    m.in_txn = false;
    // 'c' at end of message means accept.
    if (!m.failed && d.action == A::kContinue) d.action = A::kAccept;
    co_return d;
  }
}

net::awaitable<void> Client::abort() {
  Impl& m = *impl_;
  m.msg_accepted = false;
  if (m.failed || !m.opened || !m.in_txn) co_return;
  m.in_txn = false;
  std::string pkt = encodeAbort();
  if (auto ec = co_await m.write(pkt, Clock::now() + m.commandTimeout()); ec)
    m.fail("abort: write: " + ec.message());
}

net::awaitable<void> Client::quit() {
  Impl& m = *impl_;
  if (m.failed || !m.opened) co_return;
  std::string pkt = encodeQuit();
  co_await m.write(pkt, Clock::now() + m.commandTimeout());
  std::error_code ec;
  m.sock.close(ec);
  m.opened = false;   // nothing more on this connection (calls return continue)
}

// ---------------------------------------------------------------------------------------
// applyModifications

namespace {

struct Line {
  std::string text;   // the whole field, CRLF included
  std::string name;   // lowercased
};

std::string fieldText(const std::string& name, const std::string& value) {
  // The filter's value has LF (or CRLF) between folded lines; stored as CRLF. A value
  // without a leading space gets one after the colon (smfi_addheader does not add it).
  std::string v;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r') continue;
    if (value[i] == '\n') {
      v += "\r\n";
      continue;
    }
    v.push_back(value[i]);
  }
  bool space = !v.empty() && (v[0] == ' ' || v[0] == '\t');
  return name + ":" + (space ? "" : " ") + v + "\r\n";
}

}  // namespace

std::string applyModifications(std::string_view message, const Modifications& mods) {
  size_t body_start = 0;
  bool blank_line = false;
  std::vector<Field> fields = splitHeader(message, body_start, &blank_line);
  std::vector<Line> lines;
  lines.reserve(fields.size() + mods.headers.size());
  for (const Field& f : fields) {
    // Each field's bytes run from its name through its CRLF (added when the message ends
    // without one, so that a field appended after it stays a field of its own).
    size_t start = static_cast<size_t>(f.name.data() - message.data());
    size_t end = static_cast<size_t>(f.value.data() - message.data()) + f.value.size();
    std::string text(message.substr(start, end - start));
    text += "\r\n";
    lines.push_back({std::move(text), toLower(f.name)});
  }
  for (const HeaderEdit& e : mods.headers) {
    std::string lname = toLower(e.name);
    switch (e.kind) {
      case HeaderEdit::Kind::kAdd: lines.push_back({fieldText(e.name, e.value), lname}); break;
      case HeaderEdit::Kind::kInsert: {
        // smfi_insheader: index 0 is the top; beyond the end appends.
        size_t at = std::min<size_t>(e.index, lines.size());
        lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(at), {fieldText(e.name, e.value), lname});
        break;
      }
      case HeaderEdit::Kind::kChange: {
        // smfi_chgheader: the index-th field of that name (1-based; 0 is taken as 1);
        // empty value deletes it; no such occurrence: the field is added.
        uint32_t want = e.index == 0 ? 1 : e.index;
        uint32_t seen = 0;
        bool done = false;
        for (size_t i = 0; i < lines.size(); ++i) {
          if (lines[i].name != lname || ++seen != want) continue;
          if (e.value.empty())
            lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(i));
          else
            lines[i].text = fieldText(e.name, e.value);
          done = true;
          break;
        }
        if (!done && !e.value.empty()) lines.push_back({fieldText(e.name, e.value), lname});
        break;
      }
    }
  }
  std::string out;
  out.reserve(message.size() + 256);
  for (const Line& l : lines) out += l.text;
  // The empty line and the body: the original's, or the replacement.
  if (blank_line || mods.body) out += "\r\n";
  if (mods.body) {
    // The replacement is raw bytes; lone LFs become CRLF so the stored message stays canonical.
    const std::string& b = *mods.body;
    for (size_t i = 0; i < b.size(); ++i) {
      if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r')) out += '\r';
      out.push_back(b[i]);
    }
  } else {
    out.append(message.substr(body_start));
  }
  return out;
}

}  // namespace postern::milter
