// checkMailboxComponent / checkMailboxAddress: which addresses can name a mailbox folder,
// and the exact message for each that cannot.
#include "directory/mailbox_name.h"

#include <gtest/gtest.h>

#include <string>

namespace postern::directory {
namespace {

struct ComponentCase {
  std::string component;
  std::string error;  // empty: safe
};

TEST(MailboxName, Components) {
  const ComponentCase cases[] = {
      {"alice", ""},
      {"a.b", ""},
      {"a..b", ""},  // not a path step: only a whole "." or ".." is
      {"a.", ""},
      {"x+tag", ""},
      {"a\\b", ""},               // a backslash is an ordinary byte on Linux
      {"\xc3\xa9t\xc3\xa9", ""},  // UTF-8
      {"example.test", ""},
      {std::string(255, 'a'), ""},
      {"", "is empty"},
      {".", "is '.' (the folder itself)"},
      {"..", "is '..' (the parent folder)"},
      {"...", "starts with '.'"},
      {".hidden", "starts with '.'"},
      {".Drafts", "starts with '.'"},
      {"a/b", "contains '/'"},
      {"/", "contains '/'"},
      {"../../x", "contains '/'"},
      {"a/", "contains '/'"},
      {std::string("a\0b", 3), "contains a NUL byte"},
      {std::string(1, '\0'), "contains a NUL byte"},
      {std::string(256, 'a'), "is longer than 255 bytes"},
  };
  for (const auto& c : cases) {
    Status st = checkMailboxComponent(c.component);
    EXPECT_EQ(st.isOk(), c.error.empty()) << "'" << c.component << "'";
    EXPECT_EQ(st.message(), c.error) << "'" << c.component << "'";
    EXPECT_EQ(isSafeMailboxComponent(c.component), c.error.empty()) << "'" << c.component << "'";
  }
}

struct AddressCase {
  std::string address;
  std::string error;  // empty: safe
};

TEST(MailboxName, Addresses) {
  const AddressCase cases[] = {
      {"alice@example.test", ""},
      {"first.last@sub.example.test", ""},
      {"x+tag@example.test", ""},
      {"\"quoted\"@example.test", ""},  // no folder trouble in the bytes themselves
      {"a@b@example.test", ""},         // split at the last '@': local part "a@b"
      {"a/b@example.test", "the local part 'a/b' contains '/'"},
      {"..@example.test", "the local part '..' is '..' (the parent folder)"},
      {".@example.test", "the local part '.' is '.' (the folder itself)"},
      {"../../x@example.test", "the local part '../../x' contains '/'"},
      {".x@example.test", "the local part '.x' starts with '.'"},
      {"@example.test", "the local part is empty"},
      {std::string("a\0b@example.test", 16), "the local part 'a\\x00b' contains a NUL byte"},
      {"alice@..", "the domain '..' is '..' (the parent folder)"},
      {"alice@a/b", "the domain 'a/b' contains '/'"},
      {"alice@", "the domain is empty"},
      {"alice", "not a mailbox address (local@domain)"},
      {"", "not a mailbox address (local@domain)"},
      {std::string(256, 'a') + "@example.test",
       "the local part '" + std::string(64, 'a') + "...' is longer than 255 bytes"},
  };
  for (const auto& c : cases) {
    Status st = checkMailboxAddress(c.address);
    EXPECT_EQ(st.isOk(), c.error.empty()) << "'" << c.address << "'";
    EXPECT_EQ(st.message(), c.error) << "'" << c.address << "'";
  }
}

}  // namespace
}  // namespace postern::directory
