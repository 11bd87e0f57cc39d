"""Issue 11: an address whose local part cannot be a mailbox folder (<root>/<domain>/<local
part>: "a/b", "..", "../../x", ".") is never acknowledged and then retried forever. It is
refused at RCPT with 550 5.1.3 even when an account for it was written into the accounts
file by hand, the CLI does not write such an account, and `config check` names the line."""

import os
import smtplib
import ssl

import pytest

from harness import Postern

# Accounts the CLI refuses, as an operator could still write them into accounts.cf.
HAND_WRITTEN = ["a/b@example.test", "..@example.test", "../../x@example.test", ".@example.test"]
ALIASES = ("postmaster@example.test alice@example.test\n"
           "@catchall.test bob@example.test\n"
           "to-bad@example.test a/b@example.test\n")


def hand_write_accounts(p, addresses):
    """Appends accounts with alice's password hash, bypassing `postern account add`."""
    lines = p.accounts_path.read_text().splitlines()
    alice_hash = next(line for line in lines if line.startswith("alice@")).split("|", 1)[1]
    p.accounts_path.write_text("\n".join(lines + [f"{a}|{alice_hash}" for a in addresses]) + "\n")
    return len(lines)   # the hand-written lines start after this many


@pytest.fixture
def hand_edited(tmp_path):
    p = Postern(tmp_path / "p", aliases=ALIASES)
    first = hand_write_accounts(p, HAND_WRITTEN)
    p.first_hand_line = first + 1
    with p:
        yield p


def rcpt(port, address, mail_from="someone@remote.test"):
    """(code, text) of RCPT TO:<address>, sent verbatim (smtplib would re-quote it)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        assert c.mail(mail_from)[0] == 250
        code, text = c.docmd("RCPT", f"TO:<{address}>")
        return code, text.decode()


def tree(root):
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files)


@pytest.mark.parametrize("address,reason", [
    ("a/b@example.test", "the local part 'a/b' contains '/'"),
    ('"../../x"@example.test', "the local part '../../x' contains '/'"),
    ('".."@example.test', "the local part '..' is '..' (the parent folder)"),
    ('"."@example.test', "the local part '.' is '.' (the folder itself)"),
    # Not in the accounts file: refused the same way (5.1.3, not 5.1.1 "User unknown").
    ("c/d@example.test", "the local part 'c/d' contains '/'"),
    ('".hidden"@example.test', "the local part '.hidden' starts with '.'"),
])
def test_rcpt_to_an_address_that_cannot_be_a_folder_is_550_5_1_3(hand_edited, address, reason):
    code, text = rcpt(hand_edited.ports["smtp"], address)
    assert (code, text) == (550, f"5.1.3 <{address}>: Bad recipient address syntax: {reason}")
    ev = hand_edited.wait_event("smtp.rejected", counter="smtp.bad_mailbox_name")
    assert ev["code"] == "550" and address in ev["reason"]


def test_unquoted_dot_dot_is_a_syntax_error(hand_edited):
    # RFC 5321 Dot-string: ".." unquoted is not an address at all; the parser answers.
    assert rcpt(hand_edited.ports["smtp"], "..@example.test") == (501, "5.1.3 Bad recipient address syntax")


def test_alias_to_such_an_account_is_550_5_1_3(hand_edited):
    code, text = rcpt(hand_edited.ports["smtp"], "to-bad@example.test")
    assert (code, text) == (550, "5.1.3 <to-bad@example.test>: Bad destination mailbox address syntax")
    hand_edited.wait_event("smtp.rejected", counter="smtp.bad_mailbox_target")
    # The operator is told which account is at fault.
    hand_edited.wait_event("directory.bad_mailbox_name", recipient="to-bad@example.test", mailbox="a/b@example.test")


def test_server_logs_the_bad_lines_at_load(hand_edited):
    # Logged while loading, before the listeners opened: all there by now.
    msgs = [e["message"] for e in hand_edited.log_events("directory.bad_mailbox_name")]
    expected = [f"{hand_edited.accounts_path}:{hand_edited.first_hand_line + i}: error: account '{address}' cannot "
                "have a mailbox: " for i, address in enumerate(HAND_WRITTEN)]
    expected.append(f"{hand_edited.aliases_path}:3: error: alias 'to-bad@example.test': target 'a/b@example.test' "
                    "is in a local domain but cannot be a mailbox: ")
    assert [m[:len(e)] for m, e in zip(msgs, expected)] == expected, msgs
    assert len(msgs) == len(expected), msgs


def test_good_recipients_in_the_same_transaction_are_delivered_and_nothing_escapes(hand_edited):
    port = hand_edited.ports["smtp"]
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        c.mail("someone@remote.test")
        assert c.docmd("RCPT", "TO:<a/b@example.test>")[0] == 550
        assert c.docmd("RCPT", 'TO:<"../../x"@example.test>')[0] == 550
        assert c.docmd("RCPT", "TO:<alice@example.test>")[0] == 250
        # A catch-all takes any local part into a safe mailbox: nothing to refuse.
        assert c.docmd("RCPT", 'TO:<"../../x"@catchall.test>')[0] == 250
        code, _ = c.data(b"Subject: safety\r\nX-Seq: 1\r\n\r\nbody\r\n")
        assert code == 250
    hand_edited.wait_mail("alice@example.test")
    hand_edited.wait_mail("bob@example.test")
    # Only the two real mailboxes exist; nothing was created outside the mailbox root.
    assert sorted({os.sep.join(p.split(os.sep)[:2]) for p in tree(hand_edited.mail_root)}) == [
        "example.test", "example.test/alice", "example.test/bob"]
    assert not (hand_edited.dir / "x").exists() and not (hand_edited.dir / "mail" / "x").exists()
    assert not [e for e in hand_edited.log_events("delivery.failed")]


def test_a_remote_address_with_a_slash_is_not_our_business(hand_edited):
    # Relayed for an authenticated user: it never becomes a folder here.
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", hand_edited.ports["submission"], timeout=10) as c:
        c.starttls(context=ctx)
        c.login("alice@example.test", "alice-secret-1")
        c.mail("alice@example.test")
        assert c.docmd("RCPT", "TO:<a/b@remote.test>")[0] == 250


def test_cli_refuses_such_accounts_and_alias_targets(tmp_path):
    p = Postern(tmp_path / "p", aliases="")
    before = p.accounts_path.read_text()
    for address, reason in [("a/b@example.test", "the local part 'a/b' contains '/'"),
                            ("..@example.test", "the local part '..' is '..' (the parent folder)"),
                            ("../../x@example.test", "the local part '../../x' contains '/'")]:
        r = p.cli("account", "add", address, "--password-stdin", input="pw\n", check=False)
        assert r.returncode != 0
        assert r.stderr == (f"postern: invalid address '{address}': {reason}, so it cannot name a mailbox folder "
                            "(<mailbox root>/<domain>/<local part>)\n")
    assert p.accounts_path.read_text() == before

    # An alias whose target would be a mailbox in a local domain; a remote target is fine.
    r = p.cli("alias", "add", "x@example.test", "alice@example.test,a/b@example.test", check=False)
    assert r.returncode != 0 and "invalid address 'a/b@example.test': the local part 'a/b' contains '/'" in r.stderr
    r = p.cli("alias", "add", "x@other.test", "a/b@example.test", check=False)   # example.test is local (alice)
    assert r.returncode != 0 and "invalid address 'a/b@example.test'" in r.stderr
    assert p.aliases_path.read_text() == ""
    p.cli("alias", "add", "x@example.test", "a/b@remote.test")

    # One written by hand: passwd refuses to keep it alive, del removes it, config check names it.
    first = hand_write_accounts(p, ["a/b@example.test"]) + 1
    r = p.cli("account", "passwd", "a/b@example.test", "--password-stdin", input="pw\n", check=False)
    assert r.returncode != 0 and "account 'a/b@example.test' cannot have a mailbox" in r.stderr
    r = p.cli("config", "check", check=False)
    assert r.returncode == 1
    assert (f"{p.accounts_path}:{first}: error: account 'a/b@example.test' cannot have a mailbox: the local part "
            "'a/b' contains '/' (mail to it is refused with 550 5.1.3)") in r.stderr
    assert "configuration is invalid" in r.stderr
    p.cli("account", "del", "a/b@example.test")
    r = p.cli("config", "check", check=False)
    assert r.returncode == 0, r.stderr


def test_config_check_names_alias_targets(tmp_path):
    p = Postern(tmp_path / "p", aliases="# team\nteam@example.test alice@example.test, ../x@example.test\n")
    r = p.cli("config", "check", check=False)
    assert r.returncode == 1
    assert (f"{p.aliases_path}:2: error: alias 'team@example.test': target '../x@example.test' is in a local domain "
            "but cannot be a mailbox: the local part '../x' contains '/'") in r.stderr
