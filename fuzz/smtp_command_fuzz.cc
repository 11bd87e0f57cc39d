// libFuzzer target for the SMTP command syntax layer: RFC 5321 §2.3.8 line framing
// (nextLine / discardUntilCrlf), §4.1.1 / §4.1.2 command parsing, mailbox syntax, and the
// §4.2 reply builder fed with the same bytes, and the §4.1.4 EHLO/HELO argument check. Invariants are checked with __builtin_trap
// so a broken one is reported as a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/proto/address.h"
#include "smtp/proto/command.h"
#include "smtp/proto/helo.h"
#include "smtp/proto/line.h"
#include "smtp/proto/reply.h"

namespace {

using namespace postern::smtp;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// A name that passes goes into the Received header: it must be one ASCII token that
// cannot close or extend the header's "from" clause.
void checkHelo(std::string_view arg) {
  if (!heloArgumentError(arg).empty()) return;
  check(!arg.empty() && arg.size() <= 255 + 2 + 45);
  for (unsigned char ch : arg) {
    check(ch > ' ' && ch < 0x7f);
    check(ch != ';' && ch != '(' && ch != ')' && ch != '"' && ch != '<' && ch != '>' && ch != '\\');
  }
  if (arg.front() == '[') check(isValidAddressLiteral(arg));
}

void checkCommand(std::string_view line) {
  auto r = parseCommand(line);
  if (const auto* e = std::get_if<CommandError>(&r)) {
    check(e->code == 500 || e->code == 501 || e->code == 553 || e->code == 555);
    check(e->enhanced.size() == 5 && e->enhanced[0] == '5');
    check(!e->text.empty());
    check(inside(e->detail, line));
    return;
  }
  const Command& c = std::get<Command>(r);
  check(c.verb != Verb::kUnknown);
  check(inside(c.verb_text, line) && inside(c.argument, line) && inside(c.path, line));
  check(c.param_count <= kMaxParams);
  for (size_t i = 0; i < c.param_count; ++i) {
    check(inside(c.params[i].keyword, line) && inside(c.params[i].value, line));
    check(!c.params[i].keyword.empty());
    check(c.params[i].has_value || c.params[i].value.empty());
  }
  if (c.verb == Verb::kMail || c.verb == Verb::kRcpt) {
    check(!(c.null_path && c.postmaster));
    if (c.null_path) check(c.verb == Verb::kMail && c.path.empty());
    if (!c.null_path && !c.postmaster) {
      // The path must re-parse to the same mailbox.
      auto mb = parseMailbox(c.path);
      check(mb.has_value());
      check(mb->local_part.data() == c.mailbox.local_part.data() && mb->domain == c.mailbox.domain);
      check(isValidDomain(mb->domain));
      std::string canon = canonicalAddress(*mb);
      check(canon.size() <= c.path.size());
    }
    if (c.verb == Verb::kMail && c.utf8) check(c.smtputf8);
    // RFC 3461: RCPT takes NOTIFY and ORCPT only; what is accepted decodes to printable
    // US-ASCII (it goes into notification header fields).
    if (c.verb == Verb::kRcpt) {
      check(c.param_count <= 2);
      check(c.notify == 0 || c.notify == kDsnNotifyNever || (c.notify & ~(kDsnNotifySuccess | kDsnNotifyFailure | kDsnNotifyDelay)) == 0);
      check(c.param_count >= (c.notify != 0 ? 1u : 0u) + (c.orcpt.empty() ? 0u : 1u));
      if (!c.orcpt.empty()) {
        auto o = decodeOrcpt(c.orcpt);
        check(o.has_value() && c.orcpt.size() <= kMaxOrcptLength && inside(c.orcpt, line));
        for (unsigned char ch : *o) check(ch >= 0x20 && ch < 0x7f);
      }
    }
    if (c.verb == Verb::kMail && !c.envid.empty()) {
      auto e = decodeXtext(c.envid);
      check(e.has_value() && c.envid.size() <= kMaxEnvidLength && inside(c.envid, line));
      for (unsigned char ch : *e) check(ch >= 0x20 && ch < 0x7f);
    }
  }
  if (c.verb == Verb::kBdat) check(c.argument.size() > 0);
  if (c.verb == Verb::kEhlo || c.verb == Verb::kHelo) checkHelo(c.argument);
}

void checkReply(std::string_view text) {
  std::string out;
  appendReply(out, 550, "5.1.1", text);
  // Every line: "550-" or "550 ", at most kMaxReplyLine, ends with CRLF; no other CR or LF.
  size_t pos = 0;
  bool saw_last = false;
  while (pos < out.size()) {
    check(!saw_last);
    size_t nl = out.find("\r\n", pos);
    check(nl != std::string::npos);
    std::string_view l(out.data() + pos, nl - pos);
    check(l.size() + 2 <= kMaxReplyLine);
    check(l.substr(0, 3) == "550" && (l[3] == '-' || l[3] == ' '));
    saw_last = l[3] == ' ';
    for (char ch : l) check(ch != '\r' && ch != '\n' && ch != '\0');
    pos = nl + 2;
  }
  check(saw_last);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  // The whole input as one line, and as a mailbox.
  checkCommand(in);
  if (auto mb = parseMailbox(in)) {
    check(inside(mb->local_part, in) && inside(mb->domain, in));
    check(mb->local_part.size() + 1 + mb->domain.size() == in.size());
  }
  if (size <= 2000) checkReply(in);
  checkHelo(in);

  // Framing: take lines as the session does (with a small limit too, to reach kTooLong).
  for (size_t max : {kMaxCommandLine, size_t{16}}) {
    std::string_view buf = in;
    bool discarding = false;
    while (!buf.empty()) {
      if (discarding) {
        bool found = false;
        size_t n = discardUntilCrlf(buf, found);
        check(n <= buf.size());
        if (found) check(n >= 2 && buf.substr(n - 2, 2) == "\r\n");
        if (n == 0) break;
        buf.remove_prefix(n);
        discarding = !found;
        continue;
      }
      LineResult r = nextLine(buf, max);
      check(r.consumed <= buf.size());
      if (r.status == LineStatus::kNeedMore) {
        check(r.consumed == 0);
        break;
      }
      check(r.consumed > 0);
      check(inside(r.line, buf));
      if (r.status == LineStatus::kLine) {
        check(r.line.size() + 2 <= max && r.consumed == r.line.size() + 2);
        check(r.line.find('\r') == std::string_view::npos && r.line.find('\n') == std::string_view::npos);
        check(r.line.find('\0') == std::string_view::npos);
        checkCommand(r.line);
      }
      if (r.status == LineStatus::kTooLong) {
        check(r.consumed == max - 1);
        discarding = true;
      }
      buf.remove_prefix(r.consumed);
    }
  }
  return 0;
}
