// Whether an address can name a mailbox folder. A mailbox lives at
// <mailbox root>/<domain>/<local part>/ (DESIGN.md, Mail store), so the domain and the
// local part each become one path component. RFC 5321 allows local parts that cannot be
// one ("a/b", and quoted ones such as "..", "../../x"); such an address never gets a
// mailbox. This is the one place that decides; every caller uses it:
//
//   - `postern account add|passwd` and `alias add` (a target in a local domain) refuse it;
//   - `postern config check` reports such an account or alias target as FILE:LINE: error;
//   - the SMTP server refuses it at RCPT with 550 5.1.3 (even when an account names it);
//   - local delivery builds no path from an address that fails it.
//
// Pure functions; they look only at the bytes of the given view.
#pragma once

#include <cstddef>
#include <string_view>

#include "util/status.h"

namespace postern::directory {

// The longest file name Linux file systems accept (NAME_MAX).
inline constexpr size_t kMaxMailboxComponentLength = 255;

// One path component: non-empty, at most kMaxMailboxComponentLength bytes, no '/' and no
// NUL byte, and not starting with '.'. The last rule covers "." and ".." (the folder itself
// and its parent) and also refuses hidden names such as ".x" or "...": no unquoted SMTP
// address has them (RFC 5321 Dot-string), Maildir++ keeps '.'-names for folders, and one
// rule leaves no look-alike of ".." behind. The message (no "local part"/"domain" prefix)
// says what is wrong, e.g. "contains '/'".
Status checkMailboxComponent(std::string_view component);
inline bool isSafeMailboxComponent(std::string_view component) {
  return checkMailboxComponent(component).isOk();
}

// "local@domain", split at the last '@': both parts pass checkMailboxComponent. Case is
// not looked at (callers lowercase). The message names the part, e.g. "the local part
// 'a/b' contains '/'", or says "not a mailbox address (local@domain)".
Status checkMailboxAddress(std::string_view address);

}  // namespace postern::directory
