// AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, offered only under TLS.
// Password checks run on the CPU pool, never on the event loop.
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <sodium.h>

#include "directory/directory_service.h"
#include "directory/password.h"
#include "log/log.h"
#include "protect/protector.h"
#include "smtp/server/session.h"
#include "util/base64.h"
#include "util/strings.h"

namespace postern::smtp {
net::awaitable<bool> Session::onAuth(const Command& cmd) {
  if (!stream_.isTls()) {
    reject(rejection::kAuthWithoutTls, 538, "5.7.11", "Encryption required for requested authentication mechanism");
    co_return !quit_;
  }
  if (!user_.empty()) {
    reject(rejection::kBadSequence, 503, "5.5.1", "Already authenticated");
    co_return !quit_;
  }
  if (in_mail_) {
    reject(rejection::kBadSequence, 503, "5.5.1", "AUTH not allowed during a mail transaction");
    co_return !quit_;
  }
  std::string_view arg = cmd.argument;
  size_t sp = arg.find(' ');
  std::string_view mech = arg.substr(0, sp);
  std::optional<std::string_view> initial;
  if (sp != std::string_view::npos) initial = arg.substr(sp + 1);

  // Reads one client response line; nullopt ends the session; "*" cancels (RFC 4954 §4).
  // A response line that cannot be taken (too long, bare CR/LF, NUL) sets `refused`: it is
  // dropped through its CRLF and the exchange ends with endRefused(), so the next line is
  // read as a command again, never as a further response.
  LineStatus refused = LineStatus::kLine;
  auto response = [&](std::string_view challenge) -> net::awaitable<std::optional<std::string>> {
    reply(334, "", challenge);
    co_return co_await readLine(kMaxAuthLine, command_timeout_, &refused);
  };
  auto endRefused = [&]() -> bool {
    if (refused == LineStatus::kTooLong)
      reject(rejection::kAuthLineTooLong, 500, "5.5.6", "Authentication Exchange line is too long");
    else
      rejectLine(refused);
    return !quit_;
  };

  std::string authcid, password;
  if (iequals(mech, "PLAIN")) {
    std::string resp;
    if (initial) {
      resp = std::string(*initial);
    } else {
      auto line = co_await response("");
      if (!line) co_return false;
      if (refused != LineStatus::kLine) co_return endRefused();
      resp = *line;
    }
    if (resp == "*") {
      reject(rejection::kAuthCancelled, 501, "5.7.0", "Authentication cancelled");
      co_return !quit_;
    }
    std::optional<std::string> decoded = resp == "=" ? std::optional<std::string>("") : base64Decode(resp);
    if (!decoded) {
      reject(rejection::kAuthBadBase64, 501, "5.5.2", "Cannot decode response");
      co_return !quit_;
    }
    // authzid NUL authcid NUL passwd
    auto parts = split(*decoded, '\0');
    if (parts.size() != 3 || parts[1].empty()) {
      reject(rejection::kAuthMalformed, 501, "5.5.2", "Malformed PLAIN response");
      co_return !quit_;
    }
    if (!parts[0].empty() && !iequals(parts[0], parts[1])) {
      reject(rejection::kAuthAuthzid, 535, "5.7.8", "Authorization identity differs from authentication identity");
      co_return !quit_;
    }
    authcid = std::string(parts[1]);
    password = std::string(parts[2]);
  } else if (iequals(mech, "LOGIN")) {
    std::string user_b64;
    if (initial) {
      user_b64 = std::string(*initial);
    } else {
      auto line = co_await response(base64Encode("Username:"));
      if (!line) co_return false;
      if (refused != LineStatus::kLine) co_return endRefused();
      user_b64 = *line;
    }
    if (user_b64 == "*") {
      reject(rejection::kAuthCancelled, 501, "5.7.0", "Authentication cancelled");
      co_return !quit_;
    }
    auto u = base64Decode(user_b64);
    if (!u) {
      reject(rejection::kAuthBadBase64, 501, "5.5.2", "Cannot decode response");
      co_return !quit_;
    }
    auto line = co_await response(base64Encode("Password:"));
    if (!line) co_return false;
    if (refused != LineStatus::kLine) co_return endRefused();
    if (*line == "*") {
      reject(rejection::kAuthCancelled, 501, "5.7.0", "Authentication cancelled");
      co_return !quit_;
    }
    auto p = base64Decode(*line);
    if (!p) {
      reject(rejection::kAuthBadBase64, 501, "5.5.2", "Cannot decode response");
      co_return !quit_;
    }
    authcid = *u;
    password = *p;
  } else {
    reject(rejection::kAuthMechanism, 504, "5.5.4", "Unrecognized authentication type");
    co_return !quit_;
  }

  std::string address = toLower(authcid);
  auto dir = ctx_.directory.current();
  const directory::Account* acct = dir->findAccount(address);
  auto& cache = ctx_.directory.authCache();
  bool ok = acct && cache.hit(address, password, acct->hash);
  if (!ok && acct) {
    auto check = [acct, dir, address, password, &cache]() {
      bool good = directory::verifyPassword(acct->scheme, acct->hash, password);
      if (good) cache.remember(address, password, acct->hash);
      return good;
    };
    ok = co_await net::offload(ctx_.cpu_pool, std::move(check));
  } else if (!acct) {
    // The same work as for an account, so the reply's timing says nothing about who exists.
    auto check = [password]() { return directory::verifyAgainstDummy(password); };
    ok = co_await net::offload(ctx_.cpu_pool, std::move(check));
  }
  OPENSSL_cleanse(password.data(), password.size());
  auto ev = log::info("smtp.auth");
  ev.kv("conn", info_.id).kv("listener", info_.listener->name).kv("client", info_.client.toString());
  if (info_.proxied) ev.kv("via", info_.peer.toString());
  ev.kv("user", address).kv("mechanism", toLower(mech)).kv("status", ok ? "ok" : "failed");
  if (!ok) {
    ++auth_failures_;
    reject(rejection::kAuthFailed, 535, "5.7.8", "Authentication credentials invalid");
    if (!quit_ && ctx_.config.protect.max_auth_attempts && auth_failures_ >= ctx_.config.protect.max_auth_attempts) {
      ctx_.counters.inc("smtp.auth_attempts_exceeded");
      reply(421, "4.7.0", fmt::format("{} Too many authentication failures; closing connection", ctx_.config.hostname));
      quit_ = true;
    }
    co_return !quit_;
  }
  ctx_.counters.inc("smtp.auth_ok");
  user_ = address;
  reply(235, "2.7.0", "Authentication successful");
  co_return true;
}

}  // namespace postern::smtp
