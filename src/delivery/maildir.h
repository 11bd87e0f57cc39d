// Maildir delivery (the Maildir format as used by Dovecot and Courier: tmp/ -> new/ by
// rename). File names follow DESIGN.md: <secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>; the
// name is derived from the spool record, so delivering the same message again after a
// crash finds the earlier copy instead of writing a second one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "io/env.h"
#include "util/status.h"

namespace postern::delivery {

// The host part with '/' and ':' escaped as \057 and \072 (they are separators in Maildir).
std::string maildirHost(std::string_view hostname);
std::string maildirName(uint64_t accepted_us, uint32_t pid, uint64_t seq, std::string_view host, uint64_t size);
// <root>/<domain>/<local>; error for addresses that could escape the root.
Result<std::string> mailboxDir(const std::string& root, std::string_view address);

// The two path components of a mailbox address; error for parts that could not be one
// safe folder name (directory::checkMailboxAddress decides).
struct MailboxName {
  std::string domain, local;
};
Result<MailboxName> splitMailbox(std::string_view address);

// Handles on a mailbox's folders.
struct MailboxDirs {
  io::Fd box, tmp, fresh, cur;   // fresh is new/
};
// Opens <root>/<domain>/<local>/{tmp,new,cur} below the open root folder one component at
// a time with O_NOFOLLOW|O_DIRECTORY, creating missing ones (0700, made durable). A
// symbolic link or a non-folder on the way fails with ELOOP or ENOTDIR, never followed.
// With `folder` ("Junk"), the Maildir++ subfolder <local>/.<folder>/{tmp,new,cur} instead,
// with the empty `maildirfolder` file Maildir++ (and Dovecot) mark subfolders with.
inline constexpr std::string_view kJunkFolder = "Junk";
Result<MailboxDirs> openMailbox(io::Env& env, int root_fd, const MailboxName& name, std::string_view folder = {});
// The bytes stored in the mailbox: Return-Path and Delivered-To, then the message with
// CRLF line ends turned into LF (the on-disk convention of Maildir).
std::string renderForMaildir(std::string_view mail_from, std::string_view delivered_to, std::string_view message);

}  // namespace postern::delivery
