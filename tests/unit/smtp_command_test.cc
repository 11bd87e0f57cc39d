// Tests for the SMTP command parser (smtp/proto/command.h): RFC 5321 §4.1.1 / §4.1.2,
// RFC 1870, 6152, 6531, 4954, 3030, 3207, 3461.
//
// Reply table: what parseCommand() returns for bad syntax. Sequence errors (503) and policy
// (552 size, 530 auth, 553 sender) belong to the session. Texts are abbreviated here.
//
//   condition                                                 code  enhanced  text
//   empty line                                                500   5.5.2     Syntax error, command unrecognized
//   unknown verb (also "MAILFROM:", "MAIL<TAB>FROM:")         500   5.5.2     Command unrecognized
//   control character (C0 or DEL) in the arguments            501   5.5.2     Syntax error: control character...
//   EHLO / HELO without a domain                              501   5.5.4     Syntax: EHLO hostname
//   MAIL without FROM:, path not in < >, text glued after >   501   5.5.4     Syntax: MAIL FROM:<address>
//   RCPT without TO:, path not in < >, text glued after >     501   5.5.4     Syntax: RCPT TO:<address>
//   MAIL: bad mailbox or source route inside < >              501   5.1.7     Bad sender address syntax
//   RCPT: bad mailbox or source route, or <>, inside < >      501   5.1.3     Bad recipient address syntax
//   parameter syntax (keyword chars, "K=" empty, '=' in val)  501   5.5.4     Bad parameter syntax
//   same parameter twice (case-insensitive)                   501   5.5.4     Duplicate parameter
//   more than kMaxParams (16) parameters                      501   5.5.4     Too many parameters
//   unknown MAIL parameter (detail = keyword)                 555   5.5.4     Unsupported MAIL parameter
//   RCPT parameter other than NOTIFY, ORCPT (detail = keyword) 555  5.5.4     Unsupported RCPT parameter
//   RET other than FULL / HDRS                                501   5.5.4     Bad RET parameter: ...
//   ENVID not xtext, or decoding to a non-printable byte      501   5.5.4     Bad ENVID parameter: must be xtext...
//   ENVID longer than 100 characters                          501   5.5.4     Bad ENVID parameter: longer than 100...
//   NOTIFY item not NEVER / SUCCESS / FAILURE / DELAY, empty  501   5.5.4     Bad NOTIFY parameter: must be NEVER...
//   NOTIFY=NEVER with another value                           501   5.5.4     Bad NOTIFY parameter: NEVER cannot...
//   NOTIFY listing a value twice                              501   5.5.4     Bad NOTIFY parameter: a value is listed twice
//   ORCPT not addr-type ";" xtext (printable when decoded)    501   5.5.4     Bad ORCPT parameter: must be addr-type;xtext
//   ORCPT longer than 500 characters                          501   5.5.4     Bad ORCPT parameter: longer than 500...
//   RET, ENVID, NOTIFY or ORCPT twice                         501   5.5.4     Duplicate parameter
//   SIZE without value, non-digits, more than 20 digits       501   5.5.4     Bad SIZE parameter
//   BODY other than 7BIT / 8BITMIME                           501   5.5.4     BODY must be 7BIT or 8BITMIME
//   SMTPUTF8=value                                            501   5.5.4     SMTPUTF8 takes no value
//   AUTH= without value or not xtext                          501   5.5.4     Bad AUTH parameter
//   MAIL: non-ASCII path without SMTPUTF8                     553   5.6.7     Non-ASCII address requires...
//   DATA / RSET / QUIT / STARTTLS with an argument            501   5.5.4     Syntax: DATA (RSET, ...)
//   VRFY / EXPN without an argument                           501   5.5.4     Syntax: VRFY address
//   BDAT: no size, non-digits, > 2^64-1, bad or extra marker  501   5.5.4     Syntax: BDAT chunk-size [LAST]
//   AUTH: no mechanism, bad/long mechanism, extra tokens      501   5.5.4     Syntax: AUTH mechanism [...]
//   AUTH: initial response not base64 or "="                  501   5.5.2     Initial response is not base64
#include "smtp/proto/command.h"

#include <gtest/gtest.h>

#include <string>

namespace postern::smtp {
namespace {

struct CmdCase {
  std::string line;
  int code;              // 0: parses
  const char* enhanced;  // when code != 0
  Verb verb;             // when code == 0
};

const CmdCase kCases[] = {
    // EHLO / HELO (§4.1.1.1)
    {"EHLO example.com", 0, "", Verb::kEhlo},
    {"ehlo example.com", 0, "", Verb::kEhlo},
    {"EhLo [192.0.2.1]", 0, "", Verb::kEhlo},
    {"EHLO  example.com  ", 0, "", Verb::kEhlo},
    {"EHLO MY_PC", 0, "", Verb::kEhlo},  // not validated by the parser: policy decides
    {"HELO x", 0, "", Verb::kHelo},
    {"helo x", 0, "", Verb::kHelo},
    {"EHLO", 501, "5.5.4", Verb::kUnknown},
    {"EHLO ", 501, "5.5.4", Verb::kUnknown},
    {"HELO", 501, "5.5.4", Verb::kUnknown},
    // MAIL (§4.1.1.2)
    {"MAIL FROM:<a@b.c>", 0, "", Verb::kMail},
    {"mail from:<a@b.c>", 0, "", Verb::kMail},
    {"Mail From:<a@b.c>", 0, "", Verb::kMail},
    {"MAIL FROM: <a@b.c>", 0, "", Verb::kMail},  // Postfix-compatible space after ':'
    {"MAIL  FROM:<a@b.c> ", 0, "", Verb::kMail},
    {"MAIL FROM:<>", 0, "", Verb::kMail},
    {"MAIL FROM:<> SIZE=0", 0, "", Verb::kMail},
    {"MAIL FROM:<a@b.c> SIZE=1000 BODY=8BITMIME", 0, "", Verb::kMail},
    {"MAIL FROM:<a@b.c> size=1000 body=7bit", 0, "", Verb::kMail},
    {"MAIL FROM:<a@b.c>  SIZE=1000   BODY=8BITMIME", 0, "", Verb::kMail},
    {"MAIL FROM:<a@b.c> SIZE=99999999999999999999", 0, "", Verb::kMail},  // 20 digits: saturates
    {"MAIL FROM:<a@b.c> SMTPUTF8", 0, "", Verb::kMail},
    {"MAIL FROM:<a@b.c> AUTH=<>", 0, "", Verb::kMail},
    {"MAIL FROM:<a@b.c> AUTH=user+40example.com", 0, "", Verb::kMail},
    {"MAIL FROM:<\"john doe\"@b.c>", 0, "", Verb::kMail},
    {"MAIL FROM:<a@[192.0.2.1]>", 0, "", Verb::kMail},
    {"MAIL FROM:<@a.example,@b.example:u@c.example>", 0, "", Verb::kMail},
    {"MAIL FROM:<\xc3\xbc@b.c> SMTPUTF8", 0, "", Verb::kMail},
    {"MAIL FROM:<a@b.c> SMTPUTF8 AUTH=\xc3\xbc", 501, "5.5.4", Verb::kUnknown},  // xtext is ASCII
    {"MAIL", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:a@b.c", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM <a@b.c>", 501, "5.5.4", Verb::kUnknown},
    {"MAIL TO:<a@b.c>", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c>SIZE=1", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<\"unterminated@b.c>", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@>", 501, "5.1.7", Verb::kUnknown},
    {"MAIL FROM:<@b.c>", 501, "5.1.7", Verb::kUnknown},
    {"MAIL FROM:<a b@c.d>", 501, "5.1.7", Verb::kUnknown},
    {"MAIL FROM:<a@b..c>", 501, "5.1.7", Verb::kUnknown},
    {"MAIL FROM:<a@-b.c>", 501, "5.1.7", Verb::kUnknown},
    {"MAIL FROM:<Postmaster>", 501, "5.1.7", Verb::kUnknown},
    {"MAIL FROM:<@a..example:u@c.example>", 501, "5.1.7", Verb::kUnknown},
    {"MAIL FROM:<@a.example u@c.example>", 501, "5.1.7", Verb::kUnknown},
    {"MAIL FROM:<\xff@b.c> SMTPUTF8", 501, "5.1.7", Verb::kUnknown},  // not UTF-8
    {"MAIL FROM:<a@b.c> SIZE=abc", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> SIZE=", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> SIZE", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> SIZE=-1", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> SIZE=123456789012345678901", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> SIZE=1 SIZE=2", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> SIZE=1 size=2", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> BODY=BINARYMIME", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> BODY", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> SMTPUTF8=yes", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> AUTH", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> AUTH=bad+4", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> -X=1", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> X=a=b", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> FOO=bar", 555, "5.5.4", Verb::kUnknown},
    // RFC 3461 §4.3, §4.4: RET and ENVID
    {"MAIL FROM:<a@b.c> RET=HDRS", 0, "", Verb::kMail},
    {"MAIL FROM:<a@b.c> ret=full ENVID=QQ314159", 0, "", Verb::kMail},
    {"MAIL FROM:<> RET=HDRS ENVID=a+2Bb+3Dc", 0, "", Verb::kMail},
    {"MAIL FROM:<a@b.c> ENVID=" + std::string(100, 'x'), 0, "", Verb::kMail},
    {"MAIL FROM:<a@b.c> RET=BODY", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> RET", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> RET=", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> RET=FULL RET=HDRS", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> ENVID", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> ENVID=bad+2", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> ENVID=a+0D+0ABcc:x", 501, "5.5.4", Verb::kUnknown},   // decodes to CR LF
    {"MAIL FROM:<a@b.c> ENVID=" + std::string(101, 'x'), 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> ENVID=x ENVID=y", 501, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<a@b.c> NOTIFY=NEVER", 555, "5.5.4", Verb::kUnknown},   // a RCPT parameter
    {"MAIL FROM:<a@b.c> BINARYMIME", 555, "5.5.4", Verb::kUnknown},
    {"MAIL FROM:<\xc3\xbc@b.c>", 553, "5.6.7", Verb::kUnknown},
    {"MAIL FROM:<a@\xc3\xbc.example>", 553, "5.6.7", Verb::kUnknown},
    {"MAIL FROM:<a@b.c>\x01", 501, "5.5.2", Verb::kUnknown},
    {"MAIL FROM:<a@b.c>\tSIZE=1", 501, "5.5.2", Verb::kUnknown},
    // RCPT (§4.1.1.3)
    {"RCPT TO:<x@y.z>", 0, "", Verb::kRcpt},
    {"rcpt to:<x@y.z>", 0, "", Verb::kRcpt},
    {"RCPT TO: <x@y.z>", 0, "", Verb::kRcpt},
    {"RCPT TO:<Postmaster>", 0, "", Verb::kRcpt},
    {"RCPT TO:<postmaster>", 0, "", Verb::kRcpt},
    {"RCPT TO:<postmaster@y.z>", 0, "", Verb::kRcpt},
    {"RCPT TO:<\"a b\"@y.z>", 0, "", Verb::kRcpt},
    {"RCPT TO:<\"a>b\"@y.z>", 0, "", Verb::kRcpt},
    {"RCPT TO:<x@[192.0.2.1]>", 0, "", Verb::kRcpt},
    {"RCPT TO:<x@[IPv6:2001:db8::1]>", 0, "", Verb::kRcpt},
    {"RCPT TO:<\xc3\xbc@y.z>", 0, "", Verb::kRcpt},  // SMTPUTF8 on MAIL is the session's check
    {"RCPT TO:<@r.example:x@y.z>", 0, "", Verb::kRcpt},
    {"RCPT TO:<>", 501, "5.1.3", Verb::kUnknown},
    {"RCPT TO:<x>", 501, "5.1.3", Verb::kUnknown},
    {"RCPT TO:<x@[300.1.1.1]>", 501, "5.1.3", Verb::kUnknown},
    {"RCPT TO:<x@[IPv6:2001:db8:::1]>", 501, "5.1.3", Verb::kUnknown},
    {"RCPT TO:<x@[tag:stuff]>", 501, "5.1.3", Verb::kUnknown},
    {"RCPT TO:<x@y.z.>", 501, "5.1.3", Verb::kUnknown},
    {"RCPT TO:x@y.z", 501, "5.5.4", Verb::kUnknown},
    {"RCPT FROM:<x@y.z>", 501, "5.5.4", Verb::kUnknown},
    {"RCPT", 501, "5.5.4", Verb::kUnknown},
    // RFC 3461 §4.1, §4.2: NOTIFY and ORCPT
    {"RCPT TO:<x@y.z> NOTIFY=NEVER", 0, "", Verb::kRcpt},
    {"RCPT TO:<x@y.z> NOTIFY=SUCCESS,FAILURE,DELAY", 0, "", Verb::kRcpt},
    {"RCPT TO:<x@y.z> notify=delay,success", 0, "", Verb::kRcpt},
    {"RCPT TO:<x@y.z> ORCPT=rfc822;x+40y.z", 0, "", Verb::kRcpt},
    {"RCPT TO:<x@y.z> NOTIFY=FAILURE ORCPT=rfc822;x@y.z", 0, "", Verb::kRcpt},
    {"RCPT TO:<Postmaster> NOTIFY=NEVER", 0, "", Verb::kRcpt},
    {"RCPT TO:<x@y.z> NOTIFY=NEVER,SUCCESS", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> NOTIFY=FAILURE,NEVER", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> NOTIFY=SUCCESS,SUCCESS", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> NOTIFY=ALWAYS", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> NOTIFY=SUCCESS,", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> NOTIFY=,DELAY", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> NOTIFY", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> NOTIFY=NEVER NOTIFY=NEVER", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> ORCPT=x@y.z", 501, "5.5.4", Verb::kUnknown},   // no addr-type
    {"RCPT TO:<x@y.z> ORCPT=;x@y.z", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> ORCPT=rfc822;", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> ORCPT=rfc(822);x@y.z", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> ORCPT=rfc822;x+0Ay", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> ORCPT=rfc822;x+4", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> ORCPT", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> ORCPT=rfc822;" + std::string(494, 'a'), 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> ORCPT=rfc822;a ORCPT=rfc822;b", 501, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> RET=FULL", 555, "5.5.4", Verb::kUnknown},   // a MAIL parameter
    {"RCPT TO:<x@y.z> X-FOO=1", 555, "5.5.4", Verb::kUnknown},
    {"RCPT TO:<x@y.z> =x", 501, "5.5.4", Verb::kUnknown},
    // DATA, RSET, QUIT, NOOP, HELP, VRFY, EXPN, STARTTLS
    {"DATA", 0, "", Verb::kData},
    {"data", 0, "", Verb::kData},
    {"DATA ", 0, "", Verb::kData},
    {"DATA x", 501, "5.5.4", Verb::kUnknown},
    {"RSET", 0, "", Verb::kRset},
    {"RSET x", 501, "5.5.4", Verb::kUnknown},
    {"QUIT", 0, "", Verb::kQuit},
    {"quit", 0, "", Verb::kQuit},
    {"QUIT now", 501, "5.5.4", Verb::kUnknown},
    {"NOOP", 0, "", Verb::kNoop},
    {"NOOP anything at all", 0, "", Verb::kNoop},
    {"NOOP \x7f", 501, "5.5.2", Verb::kUnknown},
    {"HELP", 0, "", Verb::kHelp},
    {"HELP MAIL", 0, "", Verb::kHelp},
    {"VRFY user", 0, "", Verb::kVrfy},
    {"VRFY", 501, "5.5.4", Verb::kUnknown},
    {"EXPN list", 0, "", Verb::kExpn},
    {"EXPN", 501, "5.5.4", Verb::kUnknown},
    {"STARTTLS", 0, "", Verb::kStarttls},
    {"starttls", 0, "", Verb::kStarttls},
    {"STARTTLS x", 501, "5.5.4", Verb::kUnknown},
    // BDAT (RFC 3030 §2)
    {"BDAT 100", 0, "", Verb::kBdat},
    {"BDAT 0 LAST", 0, "", Verb::kBdat},
    {"bdat 5 last", 0, "", Verb::kBdat},
    {"BDAT 18446744073709551615", 0, "", Verb::kBdat},
    {"BDAT", 501, "5.5.4", Verb::kUnknown},
    {"BDAT x", 501, "5.5.4", Verb::kUnknown},
    {"BDAT -1", 501, "5.5.4", Verb::kUnknown},
    {"BDAT +1", 501, "5.5.4", Verb::kUnknown},
    {"BDAT 1k", 501, "5.5.4", Verb::kUnknown},
    {"BDAT 18446744073709551616", 501, "5.5.4", Verb::kUnknown},
    {"BDAT 1 FIRST", 501, "5.5.4", Verb::kUnknown},
    {"BDAT 1 LAST x", 501, "5.5.4", Verb::kUnknown},
    {"BDAT LAST", 501, "5.5.4", Verb::kUnknown},
    // AUTH (RFC 4954 §4)
    {"AUTH PLAIN", 0, "", Verb::kAuth},
    {"auth login", 0, "", Verb::kAuth},
    {"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", 0, "", Verb::kAuth},
    {"AUTH PLAIN =", 0, "", Verb::kAuth},
    {"AUTH SCRAM-SHA-256", 0, "", Verb::kAuth},
    {"AUTH", 501, "5.5.4", Verb::kUnknown},
    {"AUTH PLAIN a b", 501, "5.5.4", Verb::kUnknown},
    {"AUTH THIS-MECHANISM-IS-TOO-LONG", 501, "5.5.4", Verb::kUnknown},
    {"AUTH PL@IN", 501, "5.5.4", Verb::kUnknown},
    {"AUTH PLAIN ***", 501, "5.5.2", Verb::kUnknown},
    // Unknown
    {"", 500, "5.5.2", Verb::kUnknown},
    {"   ", 500, "5.5.2", Verb::kUnknown},
    {"FOO", 500, "5.5.2", Verb::kUnknown},
    {"FOO bar", 500, "5.5.2", Verb::kUnknown},
    {"EHL", 500, "5.5.2", Verb::kUnknown},
    {"STARTTLSX", 500, "5.5.2", Verb::kUnknown},
    {"MAILFROM:<a@b.c>", 500, "5.5.2", Verb::kUnknown},
    {"MAIL\tFROM:<a@b.c>", 500, "5.5.2", Verb::kUnknown},
    {" MAIL FROM:<a@b.c>", 500, "5.5.2", Verb::kUnknown},
    {"GET / HTTP/1.1", 500, "5.5.2", Verb::kUnknown},
    {std::string("NO\0OP", 5), 500, "5.5.2", Verb::kUnknown},
};

class CommandTableTest : public ::testing::TestWithParam<CmdCase> {};

TEST_P(CommandTableTest, ParsesOrRejects) {
  const CmdCase& c = GetParam();
  auto r = parseCommand(c.line);
  if (c.code == 0) {
    ASSERT_TRUE(std::holds_alternative<Command>(r))
        << "got " << std::get<CommandError>(r).code << " " << std::get<CommandError>(r).text;
    EXPECT_EQ(std::get<Command>(r).verb, c.verb);
  } else {
    ASSERT_TRUE(std::holds_alternative<CommandError>(r)) << "parsed as " << verbName(std::get<Command>(r).verb);
    const CommandError& e = std::get<CommandError>(r);
    EXPECT_EQ(e.code, c.code) << e.text;
    EXPECT_EQ(e.enhanced, c.enhanced) << e.text;
    EXPECT_FALSE(e.text.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Table, CommandTableTest, ::testing::ValuesIn(kCases));

Command parseOk(std::string_view line) {
  auto r = parseCommand(line);
  EXPECT_TRUE(std::holds_alternative<Command>(r)) << line;
  if (!std::holds_alternative<Command>(r)) return Command{};
  return std::get<Command>(r);
}

TEST(Command, VerbTextAndArgument) {
  Command c = parseOk("ehlo  mail.example.org  ");
  EXPECT_EQ(c.verb_text, "ehlo");
  EXPECT_EQ(c.argument, "mail.example.org");
  c = parseOk("NOOP");
  EXPECT_TRUE(c.argument.empty());
  c = parseOk("AUTH PLAIN dGVzdA==");
  EXPECT_EQ(c.argument, "PLAIN dGVzdA==");
}

TEST(Command, MailFields) {
  Command c = parseOk("MAIL FROM:<a@b.c> SIZE=1000 BODY=8BITMIME");
  EXPECT_EQ(c.path, "a@b.c");
  EXPECT_FALSE(c.null_path);
  EXPECT_EQ(c.mailbox.local_part, "a");
  EXPECT_EQ(c.mailbox.domain, "b.c");
  ASSERT_EQ(c.param_count, 2u);
  EXPECT_EQ(c.params[0].keyword, "SIZE");
  EXPECT_EQ(c.params[0].value, "1000");
  EXPECT_TRUE(c.params[0].has_value);
  EXPECT_EQ(c.params[1].keyword, "BODY");
  EXPECT_TRUE(c.has_size);
  EXPECT_EQ(c.size, 1000u);
  EXPECT_EQ(c.body, BodyType::k8BitMime);
  EXPECT_FALSE(c.smtputf8);
}

TEST(Command, NullSender) {
  Command c = parseOk("MAIL FROM:<> BODY=7BIT");
  EXPECT_TRUE(c.null_path);
  EXPECT_TRUE(c.path.empty());
  EXPECT_EQ(c.body, BodyType::k7Bit);
}

TEST(Command, SourceRouteIsDropped) {
  Command c = parseOk("RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>");
  EXPECT_EQ(c.path, "userc@d.bar.org");
  EXPECT_EQ(c.mailbox.domain, "d.bar.org");
}

TEST(Command, QuotedLocalPartKeepsQuotes) {
  Command c = parseOk("RCPT TO:<\"a>b c\"@y.z>");
  EXPECT_EQ(c.path, "\"a>b c\"@y.z");
  EXPECT_TRUE(c.mailbox.quoted_local);
  EXPECT_EQ(c.mailbox.local_part, "\"a>b c\"");
}

TEST(Command, Postmaster) {
  Command c = parseOk("RCPT TO:<PostMaster>");
  EXPECT_TRUE(c.postmaster);
  EXPECT_EQ(c.path, "PostMaster");
  c = parseOk("RCPT TO:<postmaster@example.com>");
  EXPECT_FALSE(c.postmaster);
  EXPECT_EQ(c.mailbox.domain, "example.com");
}

TEST(Command, Utf8) {
  Command c =
      parseOk("MAIL FROM:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a> SMTPUTF8");
  EXPECT_TRUE(c.smtputf8);
  EXPECT_TRUE(c.utf8);
  EXPECT_TRUE(c.mailbox.utf8);
  c = parseOk("RCPT TO:<\xc3\xbc@y.z>");
  EXPECT_TRUE(c.utf8);
  c = parseOk("RCPT TO:<u@y.z>");
  EXPECT_FALSE(c.utf8);
}

TEST(Command, SizeSaturates) {
  Command c = parseOk("MAIL FROM:<a@b.c> SIZE=99999999999999999999");
  EXPECT_EQ(c.size, UINT64_MAX);
  c = parseOk("MAIL FROM:<a@b.c> SIZE=18446744073709551615");
  EXPECT_EQ(c.size, UINT64_MAX);
  c = parseOk("MAIL FROM:<a@b.c> SIZE=007");
  EXPECT_EQ(c.size, 7u);
}

TEST(Command, AuthParam) {
  Command c = parseOk("MAIL FROM:<a@b.c> AUTH=e+3Dmc2@example.com");
  EXPECT_TRUE(c.has_auth);
  EXPECT_EQ(c.auth, "e+3Dmc2@example.com");
}

TEST(Command, UnknownParamDetail) {
  auto r = parseCommand("MAIL FROM:<a@b.c> SIZE=1 X-FOO=bar");
  ASSERT_TRUE(std::holds_alternative<CommandError>(r));
  EXPECT_EQ(std::get<CommandError>(r).code, 555);
  EXPECT_EQ(std::get<CommandError>(r).detail, "X-FOO");
  r = parseCommand("RCPT TO:<a@b.c> NOTIFY=NEVER X-BAR");
  ASSERT_TRUE(std::holds_alternative<CommandError>(r));
  EXPECT_EQ(std::get<CommandError>(r).detail, "X-BAR");
}

TEST(Command, DsnMailParams) {
  Command c = parseOk("MAIL FROM:<a@b.c>");
  EXPECT_EQ(c.ret, DsnRetParam::kUnspecified);
  EXPECT_TRUE(c.envid.empty());
  c = parseOk("MAIL FROM:<a@b.c> RET=hdrs ENVID=QQ+2B314159");
  EXPECT_EQ(c.ret, DsnRetParam::kHdrs);
  EXPECT_EQ(c.envid, "QQ+2B314159");
  EXPECT_EQ(decodeXtext(c.envid), "QQ+314159");
  c = parseOk("MAIL FROM:<a@b.c> RET=FULL");
  EXPECT_EQ(c.ret, DsnRetParam::kFull);
}

TEST(Command, DsnRcptParams) {
  Command c = parseOk("RCPT TO:<x@y.z>");
  EXPECT_EQ(c.notify, 0);
  EXPECT_TRUE(c.orcpt.empty());
  c = parseOk("RCPT TO:<x@y.z> NOTIFY=NEVER");
  EXPECT_EQ(c.notify, kDsnNotifyNever);
  c = parseOk("RCPT TO:<x@y.z> NOTIFY=Delay,Success ORCPT=rfc822;Joe+2BX+40y.z");
  EXPECT_EQ(c.notify, kDsnNotifyDelay | kDsnNotifySuccess);
  EXPECT_EQ(c.orcpt, "rfc822;Joe+2BX+40y.z");
  EXPECT_EQ(decodeOrcpt(c.orcpt), "rfc822;Joe+X@y.z");
  c = parseOk("RCPT TO:<x@y.z> NOTIFY=FAILURE");
  EXPECT_EQ(c.notify, kDsnNotifyFailure);
}

TEST(Command, XtextDecoding) {
  EXPECT_EQ(decodeXtext("abc"), "abc");
  EXPECT_EQ(decodeXtext("a+20b+2b"), "a b+");
  EXPECT_EQ(decodeXtext("a+0Db"), std::nullopt) << "a CR could forge a header field";
  EXPECT_EQ(decodeXtext("a+7F"), std::nullopt);
  EXPECT_EQ(decodeXtext("a+2"), std::nullopt);
  EXPECT_EQ(decodeXtext("a=b"), std::nullopt);
  EXPECT_EQ(decodeXtext(""), std::nullopt);
  EXPECT_EQ(decodeOrcpt("x-local;a+3Bb"), "x-local;a;b");
  EXPECT_EQ(decodeOrcpt("rfc822"), std::nullopt);
}

TEST(Command, ParamLimit) {
  std::string line = "MAIL FROM:<a@b.c>";
  for (size_t i = 0; i < kMaxParams; ++i) line += " P" + std::to_string(i);
  // 16 well-formed but unknown parameters: the count is fine, the first is unsupported.
  auto r = parseCommand(line);
  ASSERT_TRUE(std::holds_alternative<CommandError>(r));
  EXPECT_EQ(std::get<CommandError>(r).code, 555);
  r = parseCommand(line + " P16");
  ASSERT_TRUE(std::holds_alternative<CommandError>(r));
  EXPECT_EQ(std::get<CommandError>(r).code, 501);
  EXPECT_EQ(std::get<CommandError>(r).text, "Too many parameters");
}

TEST(Command, Bdat) {
  Command c = parseOk("BDAT 100");
  EXPECT_EQ(c.chunk_size, 100u);
  EXPECT_FALSE(c.last);
  c = parseOk("BDAT 0 LAST");
  EXPECT_EQ(c.chunk_size, 0u);
  EXPECT_TRUE(c.last);
  c = parseOk("BDAT  42   last ");
  EXPECT_EQ(c.chunk_size, 42u);
  EXPECT_TRUE(c.last);
}

TEST(Command, Auth) {
  Command c = parseOk("AUTH PLAIN dGVzdA==");
  EXPECT_EQ(c.mechanism, "PLAIN");
  EXPECT_TRUE(c.has_initial_response);
  EXPECT_EQ(c.initial_response, "dGVzdA==");
  c = parseOk("AUTH LOGIN");
  EXPECT_EQ(c.mechanism, "LOGIN");
  EXPECT_FALSE(c.has_initial_response);
  c = parseOk("AUTH PLAIN =");
  EXPECT_EQ(c.initial_response, "=");
}

TEST(Command, ViewsPointIntoLine) {
  std::string line = "MAIL FROM:<@r.example:u@c.example> SIZE=5 AUTH=<>";
  Command c = parseOk(line);
  auto inside = [&](std::string_view v) {
    return v.empty() || (v.data() >= line.data() && v.data() + v.size() <= line.data() + line.size());
  };
  EXPECT_TRUE(inside(c.verb_text));
  EXPECT_TRUE(inside(c.argument));
  EXPECT_TRUE(inside(c.path));
  EXPECT_TRUE(inside(c.mailbox.local_part));
  EXPECT_TRUE(inside(c.mailbox.domain));
  for (size_t i = 0; i < c.param_count; ++i) {
    EXPECT_TRUE(inside(c.params[i].keyword));
    EXPECT_TRUE(inside(c.params[i].value));
  }
}

TEST(Command, VerbNames) {
  for (Verb v : {Verb::kEhlo, Verb::kHelo, Verb::kMail, Verb::kRcpt, Verb::kData, Verb::kBdat, Verb::kRset, Verb::kNoop,
                 Verb::kQuit, Verb::kVrfy, Verb::kExpn, Verb::kHelp, Verb::kStarttls, Verb::kAuth}) {
    EXPECT_EQ(verbFromText(verbName(v)), v);
  }
  EXPECT_EQ(verbName(Verb::kUnknown), "UNKNOWN");
  EXPECT_EQ(verbFromText("UNKNOWN"), Verb::kUnknown);
}

}  // namespace
}  // namespace postern::smtp
