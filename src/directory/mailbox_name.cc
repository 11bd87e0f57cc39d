// Which addresses can name a mailbox folder (see mailbox_name.h).
#include "directory/mailbox_name.h"

#include <string>
#include <utility>

#include "directory/accounts.h"

namespace postern::directory {

Status checkMailboxComponent(std::string_view component) {
  if (component.empty()) return Status::invalid("is empty");
  if (component.find('\0') != std::string_view::npos) return Status::invalid("contains a NUL byte");
  if (component.find('/') != std::string_view::npos) return Status::invalid("contains '/'");
  if (component == "." || component == "..")
    return Status::invalid(std::string("is '") + std::string(component) + "' (" +
                           (component == "." ? "the folder itself" : "the parent folder") + ")");
  if (component.front() == '.') return Status::invalid("starts with '.'");
  if (component.size() > kMaxMailboxComponentLength)
    return Status::invalid("is longer than " + std::to_string(kMaxMailboxComponentLength) + " bytes");
  return Status::ok();
}

Status checkMailboxAddress(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return Status::invalid("not a mailbox address (local@domain)");
  std::string_view local = address.substr(0, at), domain = address.substr(at + 1);
  for (auto [part, name] : {std::pair{local, "the local part"}, std::pair{domain, "the domain"}}) {
    if (Status st = checkMailboxComponent(part); !st)
      return Status::invalid(std::string(name) + (part.empty() ? "" : " '" + quoteForMessage(part) + "'") + " " +
                             st.message());
  }
  return Status::ok();
}

}  // namespace postern::directory
