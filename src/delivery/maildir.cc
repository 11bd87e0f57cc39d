#include "delivery/maildir.h"
#include "directory/mailbox_name.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace postern::delivery {

std::string maildirHost(std::string_view hostname) {
  std::string out;
  for (char c : hostname) {
    if (c == '/') out += "\\057";
    else if (c == ':') out += "\\072";
    else out += c;
  }
  return out;
}

std::string maildirName(uint64_t accepted_us, uint32_t pid, uint64_t seq, std::string_view host, uint64_t size) {
  return fmt::format("{}.M{}P{}Q{}.{},S={}", accepted_us / 1'000'000, accepted_us % 1'000'000, pid, seq, host, size);
}

Result<MailboxName> splitMailbox(std::string_view address) {
  if (Status s = directory::checkMailboxAddress(address); !s)
    return Status::invalid(fmt::format("unsafe mailbox address {}: {}", address, s.message()));
  size_t at = address.rfind('@');
  return MailboxName{std::string(address.substr(at + 1)), std::string(address.substr(0, at))};
}

Result<std::string> mailboxDir(const std::string& root, std::string_view address) {
  auto n = splitMailbox(address);
  if (!n) return n.status();
  return fmt::format("{}/{}/{}", root, n->domain, n->local);
}

namespace {

// One folder below `parent`, created if missing; never through a symbolic link.
Result<io::Fd> openFolder(io::Env& env, int parent, const std::string& name) {
  constexpr unsigned kFlags = io::kRead | io::kDirectory | io::kNoFollow;
  auto fd = env.openAt(parent, name, kFlags);
  if (!fd && fd.status().sysErrno() == ENOENT) {
    if (Status s = env.mkdirAt(parent, name, 0700); !s && s.sysErrno() != EEXIST) return s;
    if (Status s = env.fsync(parent); !s) return s;
    fd = env.openAt(parent, name, kFlags);
  }
  if (!fd) {
    int e = fd.status().sysErrno();
    if (e == ELOOP || e == ENOTDIR)
      return Status::fromErrno(e, fmt::format("{} is not a folder (a symbolic link or a file): {}", name,
                                              fd.status().message()));
    return fd.status();
  }
  return io::Fd(env, *fd);
}

}  // namespace

Result<MailboxDirs> openMailbox(io::Env& env, int root_fd, const MailboxName& name, std::string_view folder) {
  auto dom = openFolder(env, root_fd, name.domain);
  if (!dom) return dom.status();
  auto box = openFolder(env, dom->get(), name.local);
  if (!box) return box.status();
  MailboxDirs d;
  d.box = std::move(box.value());
  if (!folder.empty()) {
    auto sub = openFolder(env, d.box.get(), fmt::format(".{}", folder));
    if (!sub) return sub.status();
    auto mark = env.openAt(sub->get(), "maildirfolder", io::kWrite | io::kCreate | io::kNoFollow, 0600);
    if (!mark) return mark.status();
    (void)env.close(*mark);
    d.box = std::move(sub.value());
  }
  for (auto [sub, out] : {std::pair{"tmp", &d.tmp}, std::pair{"new", &d.fresh}, std::pair{"cur", &d.cur}}) {
    auto f = openFolder(env, d.box.get(), sub);
    if (!f) return f.status();
    *out = std::move(f.value());
  }
  return d;
}

std::string renderForMaildir(std::string_view mail_from, std::string_view delivered_to, std::string_view message) {
  std::string out;
  out.reserve(message.size() + mail_from.size() + delivered_to.size() + 40);
  out += "Return-Path: <";
  out += mail_from;
  out += ">\nDelivered-To: ";
  out += delivered_to;
  out += '\n';
  // CRLF -> LF in runs: copy up to each CR that starts a CRLF.
  size_t pos = 0;
  while (pos < message.size()) {
    const void* hit = std::memchr(message.data() + pos, '\r', message.size() - pos);
    size_t cr = hit ? static_cast<size_t>(static_cast<const char*>(hit) - message.data()) : message.size();
    out.append(message.substr(pos, cr - pos));
    if (cr >= message.size()) break;
    if (cr + 1 < message.size() && message[cr + 1] == '\n') {
      pos = cr + 1;  // drop the CR, keep the LF
    } else {
      out += '\r';
      pos = cr + 1;
    }
  }
  return out;
}

}  // namespace postern::delivery
