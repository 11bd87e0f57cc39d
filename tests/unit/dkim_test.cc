// Tests for DKIM canonicalization, header selection (RFC 6376 §3.4, §5.4, §3.7), the
// signature field and keys (dkim/canon.h, dkim/signer.h, dkim/key_store.h).
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.h"
#include "dkim/canon.h"
#include "dkim/key_store.h"
#include "dkim/signer.h"

namespace postern::dkim {
namespace {

// RFC 6376 §3.4.5, written with real bytes.
constexpr std::string_view kExample =
    "A: X\r\n"
    "B : Y\t\r\n"
    "\tZ  \r\n"
    "\r\n"
    " C \r\n"
    "D \t E\r\n"
    "\r\n"
    "\r\n";

std::string allHeaders(const MessageParts& m, Canon c) {
  std::string out;
  for (const auto& f : m.fields) out += canonicalHeader(f, c);
  return out;
}

TEST(DkimCanon, Rfc6376Example) {
  auto m = splitMessage(kExample);
  ASSERT_TRUE(m) << m.status().message();
  ASSERT_EQ(m->fields.size(), 2u);
  EXPECT_EQ(allHeaders(*m, Canon::kRelaxed), "a:X\r\nb:Y Z\r\n");
  EXPECT_EQ(canonicalBody(m->body, Canon::kRelaxed), " C\r\nD E\r\n");
  EXPECT_EQ(allHeaders(*m, Canon::kSimple), "A: X\r\nB : Y\t\r\n\tZ  \r\n");
  EXPECT_EQ(canonicalBody(m->body, Canon::kSimple), " C \r\nD \t E\r\n");
}

struct BodyCase {
  const char* name;
  std::string body;
  std::string simple;
  std::string relaxed;
};

const BodyCase kBodyCases[] = {
    {"empty", "", "\r\n", ""},
    {"only_crlf", "\r\n", "\r\n", ""},
    {"only_empty_lines", "\r\n\r\n\r\n", "\r\n", ""},
    {"no_final_crlf", "abc", "abc\r\n", "abc\r\n"},
    {"trailing_wsp", "a \t \r\n", "a \t \r\n", "a\r\n"},
    {"wsp_only_lines_at_end", "a\r\n \t\r\n  \r\n", "a\r\n \t\r\n  \r\n", "a\r\n"},
    {"inner_empty_lines_kept", "a\r\n\r\n\r\nb\r\n\r\n", "a\r\n\r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n"},
    {"leading_wsp_becomes_one_space", "\t\t x  y\r\n", "\t\t x  y\r\n", " x y\r\n"},
    {"lone_cr_is_content", "a\rb\r\n", "a\rb\r\n", "a\rb\r\n"},
    {"dot_line", ".\r\n", ".\r\n", ".\r\n"},
};

class DkimBody : public testing::TestWithParam<BodyCase> {};

TEST_P(DkimBody, Canonical) {
  const BodyCase& c = GetParam();
  EXPECT_EQ(canonicalBody(c.body, Canon::kSimple), c.simple);
  EXPECT_EQ(canonicalBody(c.body, Canon::kRelaxed), c.relaxed);
  // Fed one byte at a time, the streaming form gives the same bytes (CRLF split across feeds).
  for (Canon canon : {Canon::kSimple, Canon::kRelaxed}) {
    std::string out;
    BodyCanonicalizer b(canon, [&](std::string_view s) { out.append(s); });
    for (char ch : c.body) b.feed(std::string_view(&ch, 1));
    b.finish();
    EXPECT_EQ(out, canon == Canon::kSimple ? c.simple : c.relaxed);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, DkimBody, testing::ValuesIn(kBodyCases),
                         [](const auto& info) { return std::string(info.param.name); });

struct HeaderCase {
  const char* name;
  std::string field;  // one field, without the final CRLF
  std::string relaxed;
};

const HeaderCase kHeaderCases[] = {
    {"name_lower_cased", "SUBJECT: Hi", "subject:Hi\r\n"},
    {"wsp_around_colon", "Subject \t:  \t Hi", "subject:Hi\r\n"},
    {"trailing_wsp", "Subject: Hi  \t", "subject:Hi\r\n"},
    {"folded", "Subject: a\r\n b\r\n\tc", "subject:a b c\r\n"},
    {"fold_at_start", "To:\r\n x@example.com", "to:x@example.com\r\n"},
    {"inner_runs", "X: a \t\t b", "x:a b\r\n"},
    {"empty_value", "X:", "x:\r\n"},
    {"value_case_kept", "X: AbC", "x:AbC\r\n"},
};

class DkimHeader : public testing::TestWithParam<HeaderCase> {};

TEST_P(DkimHeader, Relaxed) {
  const HeaderCase& c = GetParam();
  const std::string text = c.field + "\r\n\r\n";
  auto m = splitMessage(text);
  ASSERT_TRUE(m) << m.status().message();
  ASSERT_EQ(m->fields.size(), 1u);
  EXPECT_EQ(canonicalHeader(m->fields[0], Canon::kRelaxed), c.relaxed);
  EXPECT_EQ(canonicalHeader(m->fields[0], Canon::kSimple), c.field + "\r\n");
}

INSTANTIATE_TEST_SUITE_P(Cases, DkimHeader, testing::ValuesIn(kHeaderCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DkimSplit, Errors) {
  EXPECT_FALSE(splitMessage(" continued\r\nA: b\r\n\r\n"));
  EXPECT_FALSE(splitMessage("not a header line\r\n\r\nbody"));
  EXPECT_FALSE(splitMessage(": no name\r\n\r\n"));
  std::string many;
  for (size_t i = 0; i <= kMaxHeaderFields; ++i) many += "X: y\r\n";
  many += "\r\n";
  EXPECT_FALSE(splitMessage(many));
}

TEST(DkimSplit, NoBodyAndNoEmptyLine) {
  auto m = splitMessage("A: 1\r\nB: 2\r\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->fields.size(), 2u);
  EXPECT_TRUE(m->body.empty());
  auto n = splitMessage("A: 1\r\n\r\n");
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->body.empty());
}

TEST(DkimSelect, FromOversignedAndDuplicatesCounted) {
  auto m = splitMessage(
      "Received: x\r\nfrom: a@example.com\r\nTo: b@example.org\r\nTo: c@example.org\r\nSubject: s\r\nX-Other: "
      "1\r\n\r\n");
  ASSERT_TRUE(m);
  std::vector<std::string> h = chooseSignedHeaders(*m);
  EXPECT_EQ(h, (std::vector<std::string>{"From", "From", "Subject", "To", "To"}));
}

TEST(DkimSelect, BottomUpInstancesAndMissingNames) {
  auto m = splitMessage("To: first\r\nSubject: s\r\nTO: second\r\n\r\n");
  ASSERT_TRUE(m);
  // §5.4.2: the last instance first; a name with no instance left adds nothing.
  EXPECT_EQ(headerHashInput(*m, {"to", "To", "to", "Subject", "Date"}, Canon::kRelaxed),
            "to:second\r\nto:first\r\nsubject:s\r\n");
  EXPECT_EQ(headerHashInput(*m, {"To"}, Canon::kSimple), "TO: second\r\n");
}

TEST(DkimFrom, Domain) {
  auto domain = [](std::string from) {
    from += "\r\n\r\n";
    auto m = splitMessage(from);
    return m ? fromDomain(*m) : std::nullopt;
  };
  EXPECT_EQ(domain("From: a@Example.COM"), "example.com");
  EXPECT_EQ(domain("From: \"A @ B\" <a@mail.example.org>"), "mail.example.org");
  EXPECT_EQ(domain("From: a@example.net (The @ user)"), "example.net");
  EXPECT_EQ(domain("From:\r\n  Someone\r\n <s@example.com>"), "example.com");
  EXPECT_EQ(domain("From: nobody"), std::nullopt);
  EXPECT_EQ(domain("From: <a@bad_domain!>"), std::nullopt);
  EXPECT_EQ(domain("To: x@example.com"), std::nullopt);
  auto two = splitMessage("From: a@example.com\r\nFrom: b@example.org\r\n\r\n");
  ASSERT_TRUE(two);
  EXPECT_EQ(fromDomain(*two), std::nullopt);
}

// Checks `field` against the key with OpenSSL's verifier: the same hash input a verifier
// builds (§3.7), with b= taken out.
bool verifies(const std::string& message, const std::string& field, const SigningKey& key) {
  size_t b = field.find(" b=") != std::string::npos ? field.find(" b=") + 1 : field.find("\tb=") + 1;
  std::string value;
  for (char c : field.substr(b + 2))
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') value += c;
  const std::string unsigned_field = field.substr(0, b + 2) + "\r\n\r\n";
  auto m = splitMessage(message);
  auto sig = splitMessage(unsigned_field);
  if (!m || !sig) return false;
  size_t hpos = field.find("h=");
  std::string hlist;
  for (size_t i = hpos + 2; field[i] != ';'; ++i)
    if (field[i] != ' ' && field[i] != '\t' && field[i] != '\r' && field[i] != '\n') hlist += field[i];
  std::vector<std::string> h;
  for (size_t start = 0;;) {
    size_t colon = hlist.find(':', start);
    h.push_back(hlist.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  std::string input = headerHashInput(*m, h, Canon::kRelaxed);
  std::string self = canonicalHeader(sig->fields[0], Canon::kRelaxed);
  input += self.substr(0, self.size() - 2);
  std::vector<unsigned char> raw(value.size());
  int n = EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(value.data()), int(value.size()));
  if (n < 0) return false;
  raw.resize(size_t(n) - (value.back() == '=') - (value[value.size() - 2] == '='));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char digest[32];
  const unsigned char* in = reinterpret_cast<const unsigned char*>(input.data());
  size_t in_len = input.size();
  const EVP_MD* md = EVP_sha256();
  if (key.type == KeyType::kEd25519) {
    EVP_Digest(in, in_len, digest, nullptr, EVP_sha256(), nullptr);
    in = digest, in_len = 32, md = nullptr;
  }
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key.pkey.get()) == 1 &&
            EVP_DigestVerify(ctx, raw.data(), raw.size(), in, in_len) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

const std::string kMessage =
    "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "From: Ann <ann@example.test>\r\nTo: bob@example.org\r\nSubject: hello there\r\n"
    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nHi Bob.  \r\n\r\n";

class DkimSign : public testing::TestWithParam<KeyType> {};

TEST_P(DkimSign, FieldShapeAndSignature) {
  auto key = generateKey(GetParam(), kMinRsaBits);
  ASSERT_TRUE(key) << key.status().message();
  key->domain = "example.test";
  key->selector = "mail";
  auto field = signMessage(kMessage, *key, 1700000000);
  ASSERT_TRUE(field) << field.status().message();
  const std::string& f = *field;
  std::string flat;  // unfolded, to find tags whatever the folding
  for (size_t i = 0; i < f.size(); ++i) {
    if (f.compare(i, 3, "\r\n\t") == 0)
      i += 2;
    else
      flat += f[i];
  }
  EXPECT_EQ(f.rfind("DKIM-Signature: v=1; a=", 0), 0u) << f;
  EXPECT_NE(flat.find(GetParam() == KeyType::kRsa ? "a=rsa-sha256;" : "a=ed25519-sha256;"), std::string::npos);
  EXPECT_NE(flat.find("c=relaxed/relaxed;"), std::string::npos);
  EXPECT_NE(flat.find("d=example.test;"), std::string::npos);
  EXPECT_NE(flat.find("s=mail;"), std::string::npos);
  EXPECT_NE(flat.find("t=1700000000;"), std::string::npos);
  EXPECT_NE(flat.find("h=From:From:Subject:Date:Message-ID:To;"), std::string::npos) << f;
  // bh= of the relaxed body "Hi Bob.\r\n".
  EXPECT_NE(flat.find("bh=kmjWRdQb+kpvA4ZSXI9Gm/RUAw0QJguOg7YOVst7P7Q=;"), std::string::npos) << f;
  ASSERT_EQ(f.substr(f.size() - 2), "\r\n");
  // Folded: no line longer than 78, continuation lines start with a tab.
  size_t start = 0;
  for (size_t eol; (eol = f.find("\r\n", start)) != std::string::npos; start = eol + 2) {
    EXPECT_LE(eol - start + (start ? 7 : 0), kFoldColumn) << f;
    if (start) {
      EXPECT_EQ(f[start], '\t');
    }
  }
  EXPECT_TRUE(verifies(kMessage, f.substr(0, f.size() - 2), *key));
  std::string changed = kMessage;
  changed.replace(changed.find("hello"), 5, "HELLO");
  EXPECT_FALSE(verifies(changed, f.substr(0, f.size() - 2), *key));
}

INSTANTIATE_TEST_SUITE_P(Types, DkimSign, testing::Values(KeyType::kRsa, KeyType::kEd25519),
                         [](const auto& info) { return std::string(keyTypeName(info.param)); });

TEST(DkimKeys, RsaBelowFloorRefused) {
  EXPECT_FALSE(generateKey(KeyType::kRsa, 512));
  EVP_PKEY* small = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(768));
  ASSERT_NE(small, nullptr);
  SigningKey k;
  k.pkey = std::shared_ptr<EVP_PKEY>(small, EVP_PKEY_free);
  auto pem = privateKeyPem(k);
  ASSERT_TRUE(pem);
  auto parsed = parsePrivateKey(*pem);
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.status().message().find("RFC 8301"), std::string::npos);
  EXPECT_FALSE(parsePrivateKey("garbage"));
}

TEST(DkimKeys, EncryptedKeyRefusedWithoutAPrompt) {
  auto key = generateKey(KeyType::kEd25519, 0);
  ASSERT_TRUE(key);
  BIO* bio = BIO_new(BIO_s_mem());
  char pass[] = "secret";
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio, key->pkey.get(), EVP_aes_256_cbc(), nullptr, 0, nullptr, pass), 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, size_t(n));
  BIO_free(bio);
  auto parsed = parsePrivateKey(pem);  // would block on a terminal prompt with OpenSSL's default callback
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.status().message().find("encrypted"), std::string::npos);
  EXPECT_EQ(ERR_peek_error(), 0ul);  // nothing left for the next TLS call on this thread
}

TEST(DkimKeys, DnsRecordSplitInto255ByteStrings) {
  auto key = generateKey(KeyType::kRsa, 2048);
  ASSERT_TRUE(key);
  auto txt = dnsTxtValue(*key);
  ASSERT_TRUE(txt);
  EXPECT_EQ(txt->rfind("v=DKIM1; k=rsa; p=MIIB", 0), 0u);
  std::string line = dnsRecordLine("example.test", "mail", *txt);
  EXPECT_EQ(line.rfind("mail._domainkey.example.test. IN TXT \"", 0), 0u);
  std::string joined;
  for (size_t q = line.find('"'); q != std::string::npos; q = line.find('"', line.find('"', q + 1) + 1)) {
    size_t end = line.find('"', q + 1);
    EXPECT_LE(end - q - 1, kTxtStringMax);
    joined += line.substr(q + 1, end - q - 1);
  }
  EXPECT_EQ(joined, *txt);
  auto ed = generateKey(KeyType::kEd25519, 0);
  ASSERT_TRUE(ed);
  auto edtxt = dnsTxtValue(*ed);
  ASSERT_TRUE(edtxt);
  EXPECT_EQ(edtxt->size(), std::string("v=DKIM1; k=ed25519; p=").size() + 44);
}

// The folder layouts of key_store.h, in a scratch folder.
class DkimFolder : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir() + "dkim-" + std::to_string(::getpid()) + "-" +
           testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string pem(KeyType t) {
    auto k = generateKey(t, kMinRsaBits);
    return *privateKeyPem(*k);
  }
  void write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(dir_ + "/" + rel).parent_path());
    std::ofstream(dir_ + "/" + rel) << text;
    ::chmod((dir_ + "/" + rel).c_str(), 0600);
  }
  std::string dir_;
};

TEST_F(DkimFolder, KeygenWritesOnceWithModes) {
  auto rec = writeNewKey(dir_, "Example.TEST", "sel1", KeyType::kEd25519, 0);
  ASSERT_TRUE(rec) << rec.status().message();
  EXPECT_EQ(rec->rfind("sel1._domainkey.example.test. IN TXT \"v=DKIM1; k=ed25519; p=", 0), 0u);
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/example.test/sel1.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/example.test").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_FALSE(writeNewKey(dir_, "example.test", "sel1", KeyType::kEd25519, 0));
  EXPECT_FALSE(writeNewKey(dir_, "../etc", "mail", KeyType::kEd25519, 0));
  EXPECT_FALSE(writeNewKey(dir_, "example.test", "a/b", KeyType::kEd25519, 0));
  ScanResult r = scanKeyFolder(dir_);
  ASSERT_NE(r.keys.find("example.test"), nullptr);
  EXPECT_EQ(r.keys.find("example.test")->selector, "sel1");
  EXPECT_EQ(r.keys.find("sub.example.test")->domain, "example.test");  // parent's key
  EXPECT_EQ(r.keys.find("test"), nullptr);
  EXPECT_EQ(r.keys.find("example.org"), nullptr);
}

TEST_F(DkimFolder, PrefersMailSelectorAndReportsBadKeys) {
  write("a.test/mail.key", pem(KeyType::kRsa));
  write("a.test/old.key", pem(KeyType::kRsa));
  write("b.test/mail.key", "not a key");
  ScanResult r = scanKeyFolder(dir_);
  ASSERT_NE(r.keys.find("a.test"), nullptr);
  EXPECT_EQ(r.keys.find("a.test")->selector, "mail");
  EXPECT_EQ(r.notes.size(), 1u);
  EXPECT_EQ(r.keys.find("b.test"), nullptr);
  ASSERT_EQ(r.problems.size(), 1u);
  ::chmod((dir_ + "/a.test/mail.key").c_str(), 0644);
  ScanResult again = scanKeyFolder(dir_);
  ASSERT_EQ(again.notes.size(), 2u);
  EXPECT_NE(again.notes[1].find("readable by group or others (mode 644)"), std::string::npos) << again.notes[1];
  EXPECT_EQ(r.problems[0].path, dir_ + "/b.test/mail.key");
}

TEST_F(DkimFolder, OpendkimTables) {
  // docker-mailserver's config/opendkim: tables name container paths.
  write("keys/a.test/mail.private", pem(KeyType::kRsa));
  write("keys/b.test/mail.private", pem(KeyType::kRsa));
  write("KeyTable",
        "mail._domainkey.a.test a.test:mail:/etc/opendkim/keys/a.test/mail.private\n"
        "mail._domainkey.b.test b.test:mail:/etc/opendkim/keys/b.test/mail.private\n");
  write("SigningTable", "*@a.test mail._domainkey.a.test\n*@c.test mail._domainkey.b.test\n");
  ScanResult r = scanKeyFolder(dir_);
  EXPECT_TRUE(r.problems.empty());
  ASSERT_NE(r.keys.find("a.test"), nullptr);
  ASSERT_NE(r.keys.find("c.test"), nullptr);
  EXPECT_EQ(r.keys.find("c.test")->domain, "b.test");   // d= is the key's domain, as opendkim signs
  EXPECT_EQ(r.keys.find("c.test")->path, dir_ + "/keys/b.test/mail.private");
  EXPECT_EQ(r.keys.find("b.test"), nullptr);  // not in the SigningTable
}

TEST_F(DkimFolder, OpendkimKeysFolderWithoutTables) {
  write("keys/a.test/mail.private", pem(KeyType::kRsa));
  ScanResult r = scanKeyFolder(dir_);
  ASSERT_NE(r.keys.find("a.test"), nullptr);
  EXPECT_EQ(r.keys.find("a.test")->selector, "mail");
}

TEST_F(DkimFolder, RspamdNames) {
  write("rsa-2048-mail-a.test.private.txt", pem(KeyType::kRsa));
  // rspamd's Ed25519 private key: base64 of seed + public key.
  write("ed25519-ed-b-c.test.private.txt",
        "POfvcAkU13OFz6Wf6jitMoAx96rjnMCY+amOmnZlcUWs1iDoHVgIvH5bonNe6K9ao1vPKtHTWO74nfXLnSaF9g==\n");
  write("rsa-2048-mail-a.test.public.txt", "ignored");
  ScanResult r = scanKeyFolder(dir_);
  EXPECT_TRUE(r.problems.empty()) << r.problems[0].reason;
  ASSERT_NE(r.keys.find("a.test"), nullptr);
  EXPECT_EQ(r.keys.find("a.test")->type, KeyType::kRsa);
  ASSERT_NE(r.keys.find("b-c.test"), nullptr);
  EXPECT_EQ(r.keys.find("b-c.test")->selector, "ed");
  EXPECT_EQ(r.keys.find("b-c.test")->type, KeyType::kEd25519);
}

TEST_F(DkimFolder, SignWithKeyForFromDomain) {
  write("example.test/mail.key", pem(KeyType::kEd25519));
  ScanResult r = scanKeyFolder(dir_);
  SignOutcome s = signWithKeyFor(r.keys, kMessage, 1);
  EXPECT_EQ(s.kind, SignOutcome::Kind::kSigned);
  EXPECT_EQ(s.domain, "example.test");
  SignOutcome none = signWithKeyFor(r.keys, "From: a@other.test\r\n\r\nx", 1);
  EXPECT_EQ(none.kind, SignOutcome::Kind::kNoKey);
  SignOutcome bad = signWithKeyFor(r.keys, "From: a@example.test\r\nbroken line\r\n\r\n", 1);
  EXPECT_EQ(bad.kind, SignOutcome::Kind::kFailed);
  EXPECT_EQ(bad.domain, "example.test");
  EXPECT_FALSE(bad.reason.empty());
  // Not signable, but not from a domain with a key either: nothing to report.
  SignOutcome other = signWithKeyFor(r.keys, "From: a@other.test\r\nbroken line\r\n\r\n", 1);
  EXPECT_EQ(other.kind, SignOutcome::Kind::kNoKey);
  SignOutcome folded = signWithKeyFor(r.keys, "Subject: x\r\nbroken\r\nFROM: A\r\n <a@example.test>\r\n\r\n", 1);
  EXPECT_EQ(folded.kind, SignOutcome::Kind::kFailed);
}

TEST_F(DkimFolder, ConfigSection) {
  std::ofstream(dir_ + "/accounts.cf") << "";
  const std::string head =
      "hostname = \"mail.example.test\"\ndata_dir = \"data\"\n[[listener]]\nservice = \"smtp\"\n"
      "address = \"127.0.0.1:25\"\n";
  auto r = config::loadFromString(head, dir_ + "/postern.toml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->dkim.keys_dir, dir_ + "/dkim");  // default: beside the file, may be absent
  for (const auto& d : r.diagnostics) EXPECT_EQ(d.message.find("no mail will be signed"), std::string::npos);
  r = config::loadFromString(head + "[dkim]\nkeys = \"/nonexistent/keys\"\n", dir_ + "/postern.toml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->dkim.keys_dir, "/nonexistent/keys");
  bool warned = false;
  for (const auto& d : r.diagnostics)
    warned |= d.severity == config::Diagnostic::Severity::kWarning &&
              d.message.find("no mail will be signed") != std::string::npos;
  EXPECT_TRUE(warned);
  r = config::loadFromString(head + "[dkim]\nkey = \"x\"\n", dir_ + "/postern.toml");
  EXPECT_TRUE(r.hasErrors());
}

}  // namespace
}  // namespace postern::dkim
